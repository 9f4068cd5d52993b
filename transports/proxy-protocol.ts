/**
 * PROXY protocol v2 (the binary header HAProxy's `send-proxy-v2` sends first
 * on a connection). Parses the source address of a TCP-over-IPv4/IPv6 header.
 */
const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

export type ProxyHeader =
  | { state: 'incomplete' }
  | { state: 'invalid' }
  /** `address` null: a LOCAL connection (health check) or an unsupported family. */
  | { state: 'done'; length: number; address: string | null };

export function parseProxyV2(buffer: Buffer): ProxyHeader {
  const seen = Math.min(buffer.length, signature.length);
  if (!buffer.subarray(0, seen).equals(signature.subarray(0, seen))) return { state: 'invalid' };
  if (buffer.length < 16) return { state: 'incomplete' };
  const versionCommand = buffer[12];
  if (versionCommand >> 4 !== 2) return { state: 'invalid' };
  const length = 16 + buffer.readUInt16BE(14);
  if (buffer.length < length) return { state: 'incomplete' };
  if ((versionCommand & 0x0f) === 0) return { state: 'done', length, address: null };
  const family = buffer[13] >> 4;
  if (family === 1 && length >= 16 + 12) {
    return { state: 'done', length, address: [...buffer.subarray(16, 20)].join('.') };
  }
  if (family === 2 && length >= 16 + 36) return { state: 'done', length, address: ipv6Text(buffer.subarray(16, 32)) };
  return { state: 'done', length, address: null };
}

/**
 * An IPv6 address in the form the socket layer and X-Forwarded-For give
 * (RFC 5952: zeros compressed, IPv4-mapped as dotted quad), so one client has
 * one address key on both transports.
 */
function ipv6Text(bytes: Buffer): string {
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return [...bytes.subarray(12, 16)].join('.');
  const groups: string[] = [];
  for (let k = 0; k < 8; k++) groups.push(bytes.readUInt16BE(2 * k).toString(16));
  // The URL parser serialises IPv6 hosts in the canonical compressed form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}
