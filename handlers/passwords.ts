import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Passwords } from './types.js';

/**
 * Salted scrypt hashes, stored as `scrypt$N$r$p$salt$hash` (base64): a hash
 * names the parameters it was made with, so the cost can be raised without
 * breaking stored hashes, and a hash made at a lower cost is found and
 * remade at the next successful login (`outdated`).
 */

/** OWASP's minimum for scrypt (Password Storage Cheat Sheet): N=2^17, r=8, p=1. */
export const defaultPasswordCost = 2 ** 17;
const blockSize = 8;
const parallelization = 1;

/**
 * Derivations running at once in this process. Each holds 128 * N * r bytes
 * (128 MiB at the default cost) for about half a second on the machines
 * this is measured on, so a burst of logins queues here instead of taking
 * a quarter of a GiB per core.
 */
const maxRunning = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function derive(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  if (running >= maxRunning) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await new Promise((resolve, reject) => {
      scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
    });
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** The memory one derivation needs, with room: Node refuses above 32 MiB unless told. */
function maxmem(N: number, r: number): number {
  return 2 * 128 * N * r;
}

/** `scrypt$N$r$p$salt$key`, or null when it is not one of ours. */
function parse(stored: string): { N: number; r: number; p: number; salt: Buffer; key: Buffer } | null {
  const [scheme, N, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return null;
  const params = [Number(N), Number(r), Number(p)];
  if (!params.every((n) => Number.isSafeInteger(n) && n > 0)) return null;
  return { N: params[0], r: params[1], p: params[2], salt: Buffer.from(salt, 'base64'), key: Buffer.from(key, 'base64') };
}

/** scrypt at cost N = `cost` (a power of two) for new hashes. */
export function scryptPasswords(cost = defaultPasswordCost): Passwords {
  return {
    async hash(password) {
      const salt = randomBytes(16);
      const key = await derive(password, salt, 32, { N: cost, r: blockSize, p: parallelization, maxmem: maxmem(cost, blockSize) });
      return ['scrypt', cost, blockSize, parallelization, salt.toString('base64'), key.toString('base64')].join('$');
    },
    async verify(password, stored) {
      const h = parse(stored);
      if (!h) return false;
      const actual = await derive(password, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: maxmem(h.N, h.r) });
      return timingSafeEqual(actual, h.key);
    },
    outdated(stored) {
      const h = parse(stored);
      return !h || h.N < cost || h.r < blockSize || h.p < parallelization || h.key.length < 32;
    },
  };
}

/** A new secret of 128 random bits, URL- and header-safe. */
export function newSecret(): string {
  return randomBytes(16).toString('base64url');
}
