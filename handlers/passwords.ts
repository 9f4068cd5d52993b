import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Passwords } from './types.js';

/**
 * Salted scrypt hashes, stored as `scrypt$N$r$p$salt$hash` (base64) so the
 * cost can be raised later without breaking stored hashes.
 */
function derive(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export function scryptPasswords(cost = 16384): Passwords {
  return {
    async hash(password) {
      const salt = randomBytes(16);
      const key = await derive(password, salt, 32, { N: cost, r: 8, p: 1 });
      return ['scrypt', cost, 8, 1, salt.toString('base64'), key.toString('base64')].join('$');
    },
    async verify(password, stored) {
      const [scheme, N, r, p, salt, key] = stored.split('$');
      if (scheme !== 'scrypt' || !salt || !key) return false;
      const expected = Buffer.from(key, 'base64');
      const actual = await derive(password, Buffer.from(salt, 'base64'), expected.length, {
        N: Number(N),
        r: Number(r),
        p: Number(p),
      });
      return timingSafeEqual(actual, expected);
    },
  };
}

/** A new secret of 128 random bits, URL- and header-safe. */
export function newSecret(): string {
  return randomBytes(16).toString('base64url');
}
