/**
 * A made-up certificate fingerprint in the one form `p2p` takes (SHA-256,
 * 32 uppercase hex pairs joined by colons), a different one for each seed.
 * For tests of the server, which only stores and relays fingerprints.
 */
export function fingerprint(seed: number): string {
  return Array.from({ length: 32 }, (_, k) => ((seed * 31 + k * 7) % 256).toString(16).toUpperCase().padStart(2, '0')).join(':');
}
