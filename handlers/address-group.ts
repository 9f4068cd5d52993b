import { ipv6Groups } from './ip-address.js';

/**
 * The key login guards count a client address under (SPEC section 2: failed
 * logins lock an address). An IPv4 address is itself, also when it comes
 * IPv4-mapped (`::ffff:10.0.0.5`). An IPv6 address is its /64: a single
 * host is usually handed a whole /64 and can pick any address in it, so
 * keying whole addresses would let it rotate past every lock.
 */
export function addressGroup(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(':')) return address;
  const groups = ipv6Groups(address.split('%')[0]);
  if (!groups) return address;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}
