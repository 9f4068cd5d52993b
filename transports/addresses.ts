import { isIP } from 'node:net';

/**
 * Which peers may tell us a client's real address (PROXY protocol on TCP,
 * X-Forwarded-For on HTTP): only the `--trust-proxy` addresses.
 */
export class TrustedProxies {
  private readonly trusted: Set<string>;

  constructor(addresses: string[]) {
    this.trusted = new Set(addresses.map(normalize));
  }

  trusts(address: string): boolean {
    return this.trusted.has(normalize(address));
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
