/**
 * IP addresses read as text, without node:net (the Worker runs the handlers
 * too): strict forms only, so one address has one spelling to compare.
 */

/** The four bytes of a dotted IPv4 address (no leading zeros, which some readers take as octal), or null. */
export function ipv4Bytes(text: string): number[] | null {
  if (!/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(text)) return null;
  const bytes = text.split('.').map(Number);
  return bytes.every((b) => b <= 255) ? bytes : null;
}

/** The eight 16-bit groups of an IPv6 address (`::` and a dotted IPv4 tail expanded), or null. */
export function ipv6Groups(text: string): number[] | null {
  const halves = text.toLowerCase().split('::');
  if (halves.length > 2) return null;
  const part = (half: string): number[] | null => {
    if (half === '') return [];
    const out: number[] = [];
    const words = half.split(':');
    for (let k = 0; k < words.length; k++) {
      const word = words[k];
      if (k === words.length - 1 && word.includes('.')) {
        const bytes = ipv4Bytes(word);
        if (!bytes) return null;
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
