import { BlockList, isIP } from 'node:net';

/**
 * Which peers may tell us a client's real address (PROXY protocol on TCP,
 * X-Forwarded-For on HTTP): only the `--trust-proxy` addresses and CIDR
 * ranges (load balancers come in pools). Node's own BlockList does the
 * matching, IPv4-mapped IPv6 peers included.
 */
export class TrustedProxies {
  private readonly trusted = new BlockList();

  /** `entries` as `parseProxyRange` accepts them; anything else throws. */
  constructor(entries: string[]) {
    for (const entry of entries) {
      const range = parseProxyRange(entry);
      if (!range) throw new Error(`not an address or CIDR range: "${entry}"`);
      if (range.prefix === null) this.trusted.addAddress(range.address, range.family);
      else this.trusted.addSubnet(range.address, range.prefix, range.family);
    }
  }

  trusts(address: string): boolean {
    const a = normalize(address);
    const family = isIP(a);
    return family !== 0 && this.trusted.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client address of an HTTP request: the socket peer, unless it is a
   * trusted proxy, in which case the right-most X-Forwarded-For entry that is
   * not itself a trusted proxy.
   */
  httpClient(peer: string, forwardedFor: string | undefined): string {
    let client = normalize(peer);
    if (!forwardedFor || !this.trusts(client)) return client;
    const hops = forwardedFor.split(',').map((h) => h.trim()).filter((h) => isIP(normalize(h)) !== 0);
    for (let k = hops.length - 1; k >= 0; k--) {
      client = normalize(hops[k]);
      if (!this.trusts(client)) break;
    }
    return client;
  }
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are the same client. */
export function normalize(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

export interface ProxyRange {
  address: string;
  family: 'ipv4' | 'ipv6';
  /** Null for a single address. */
  prefix: number | null;
}

/** `10.0.0.5`, `10.0.0.0/8`, `::1` or `fd00::/8`; null for anything else. */
export function parseProxyRange(text: string): ProxyRange | null {
  const match = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!match) return null;
  const address = normalize(match[1]);
  const kind = isIP(address);
  if (kind === 0) return null;
  const family = kind === 4 ? 'ipv4' : 'ipv6';
  if (match[2] === undefined) return { address, family, prefix: null };
  const prefix = Number(match[2]);
  return prefix <= (kind === 4 ? 32 : 128) ? { address, family, prefix } : null;
}
