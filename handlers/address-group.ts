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

/** The eight 16-bit groups of an IPv6 address (`::` and a dotted IPv4 tail expanded), or null. */
function ipv6Groups(text: string): number[] | null {
  const halves = text.toLowerCase().split('::');
  if (halves.length > 2) return null;
  const part = (half: string): number[] | null => {
    if (half === '') return [];
    const out: number[] = [];
    const words = half.split(':');
    for (let k = 0; k < words.length; k++) {
      const word = words[k];
      if (k === words.length - 1 && word.includes('.')) {
        const bytes = word.split('.').map(Number);
        if (bytes.length !== 4 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) return null;
        out.push((bytes[0] << 8) | bytes[1], (bytes[2] << 8) | bytes[3]);
      } else if (/^[0-9a-f]{1,4}$/.test(word)) {
        out.push(parseInt(word, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = part(halves[0]);
  const tail = halves.length === 2 ? part(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
