import { randomBytes, scryptSync } from 'node:crypto';
import type { Redis } from 'ioredis';

/** The password every bench user has. */
export const PASSWORD = 'bench-pw';

/**
 * scrypt cost of the bench users' hashes: far below the server's own
 * (N=131072, r=8), so that logging in thousands of users measures the server,
 * not scrypt; the bench tells the server to keep them (IM_REHASH_PASSWORDS=no,
 * bench/runner/processes.ts). The results say so.
 */
export const CHEAP_SCRYPT = { N: 16, r: 1, p: 1 };

/**
 * Creates users straight in the state store, in the layout the server reads
 * (`u:{<name>}` hash with the password hash, `{im}:users` set, and the
 * layout's version `{im}:schema`, so a server of that version does not take
 * them for an older store to migrate), rather than through a credentials
 * file, whose full-cost hashing takes ~50 ms a user. This is the one place
 * that knows the layout: change it here if it moves.
 */
export async function createUsers(redis: Redis, names: string[]): Promise<void> {
  const { N, r, p } = CHEAP_SCRYPT;
  for (let i = 0; i < names.length; i += 1000) {
    const pipeline = redis.pipeline();
    for (const name of names.slice(i, i + 1000)) {
      const salt = randomBytes(16);
      const key = scryptSync(PASSWORD, salt, 32, { N, r, p });
      const hash = ['scrypt', N, r, p, salt.toString('base64'), key.toString('base64')].join('$');
      pipeline.hset(`u:{${name}}`, 'hash', hash);
      pipeline.sadd('{im}:users', name);
    }
    await pipeline.exec();
  }
  // Version 2 added the reverse block index; these users block nobody.
  await redis.set('{im}:schema', '2');
}

/** `<prefix><n>` for n in [from, to): bench usernames, all within [A-Za-z0-9_.-]{1,32}. */
export function userNames(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, k) => `${prefix}${from + k}`);
}
