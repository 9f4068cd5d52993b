import RedisMock from 'ioredis-mock';
import { scryptPasswords } from '../../handlers/passwords.js';
import { defaultConfig, type Config, type Context } from '../../handlers/types.js';
import { importUsers } from '../../handlers/users.js';
import { RedisState } from '../../state/redis.js';
import { randomBytes } from 'node:crypto';

/** A clock the test moves by hand. */
export class FakeClock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/**
 * A handler context on a fresh ioredis-mock store (each test gets its own
 * data: the mock shares data between instances of the same host and port, so
 * each store gets a port of its own).
 */
let nextPort = 20000;
export function mockState(): RedisState {
  const redis = new RedisMock({ port: nextPort++ });
  return new RedisState(redis, redis.duplicate());
}

export const sampleUsers = [
  { user: 'yoda', password: 'wise' },
  { user: 'luke', password: 'sunrise' },
  { user: 'hans', password: 'falcon' },
  { user: 'leia', password: 'alderaan' },
];

/** Cheap scrypt cost for tests: hashing speed is not what they check. */
export const testPasswords = scryptPasswords(1024);

export async function testContext(config: Partial<Config> = {}, state = mockState()) {
  const clock = new FakeClock();
  const ctx: Context = {
    state,
    clock,
    config: { ...defaultConfig, ...config },
    passwords: testPasswords,
    secret: () => randomBytes(16).toString('base64url'),
  };
  await importUsers(ctx, sampleUsers);
  return { ctx, clock, state };
}
