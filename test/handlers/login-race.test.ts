import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch } from '../../handlers/registry.js';
import { defaultConfig, type Context, type Reply } from '../../handlers/types.js';
import { importUsers } from '../../handlers/users.js';
import { openState } from '../../state/connect.js';
import type { RedisState } from '../../state/redis.js';
import { testPasswords } from '../support/context.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

/**
 * The account lockout of SPEC section 2 under a real race: several replicas,
 * each with its own connections to one real redis-server, take wrong
 * passwords for the same account at the same moment. (The mock store of
 * harness.ts runs one script at a time in one process, so it races nothing.)
 * Every attempt reads the account before any of them has counted a failure,
 * so only a count that is atomic, and that stops once the account is
 * locked, gives the answers the spec promises.
 */

const invalidPassword = 'Invalid Password. Please try again';
const passwordLocked = 'Invalid Password. Your account has been blocked. Please try again later';
const accountBlocked = 'Your account is blocked due to multiple login failures. Please try again later';

const REPLICAS = 4;
const ATTEMPTS = 16;
const ACCOUNTS = ['race0', 'race1', 'race2', 'race3', 'race4'];
const PASSWORD = 'right-one';

let redis: RedisServer;
const stores: RedisState[] = [];
const replicas: Context[] = [];

beforeAll(async () => {
  redis = await startRedis();
  for (let r = 0; r < REPLICAS; r++) {
    const { state } = openState(redis.url);
    stores.push(state);
    replicas.push({
      state,
      clock: { now: () => Date.now() },
      // block_duration 60 s: longer than the test, so every lock holds to the end.
      config: { ...defaultConfig, blockDuration: 60 },
      passwords: testPasswords,
      secret: () => randomBytes(16).toString('base64url'),
    });
  }
  await importUsers(replicas[0], ACCOUNTS.map((user) => ({ user, password: PASSWORD })));
});

afterAll(async () => {
  for (const state of stores) await state.close();
  await redis?.stop();
});

/** `login <user> <password>` from a fresh connection on replica `r`, from an address of its own. */
function attempt(r: number, user: string, password: string, address: string): Promise<Reply> {
  return dispatch(replicas[r % REPLICAS], { address }, `login ${user} ${password}`);
}

describe('login <user> <password>: wrong passwords at once through several replicas on one real Redis', () => {
  it.each(ACCOUNTS)('%s: the third failure blocks the account, once; every later attempt is refused as blocked, the right password too', async (user) => {
    const replies = await Promise.all(
      Array.from({ length: ATTEMPTS }, (_v, k) => attempt(k, user, `wrong${k}`, `10.7.${ACCOUNTS.indexOf(user)}.${k + 1}`)),
    );
    const tally = (text: string) => replies.filter((r) => r.text === text).length;
    const summary = JSON.stringify(replies.map((r) => r.text));
    // Exactly three failures were counted: two plain ones, then the one that blocks.
    expect(tally(invalidPassword), summary).toBe(2);
    expect(tally(passwordLocked), summary).toBe(1);
    expect(tally(accountBlocked), summary).toBe(ATTEMPTS - 3);
    for (const reply of replies) {
      expect(reply).toMatchObject({ cmd: 'login', ok: false, error: reply.text === accountBlocked ? 'account_blocked' : 'invalid_password' });
    }
    // Blocked from anywhere, through any replica, even with the right password.
    for (let r = 0; r < REPLICAS; r++) {
      expect(await attempt(r, user, PASSWORD, `192.168.50.${r + 1}`)).toMatchObject({ ok: false, error: 'account_blocked', text: accountBlocked });
    }
  });
});

const invalidUsername = 'Invalid Username. Please try again';
const usernameLocked = 'Invalid Username. Your address has been blocked. Please try again later';
const addressBlocked = 'Your address is blocked due to multiple login failures. Please try again later';

describe('login <user> <password>: unknown usernames at once from one address through several replicas on one real Redis', () => {
  it.each([1, 2, 3])('round %i: the third blocks the address, once; every later attempt is refused as blocked, a real user too', async (round) => {
    const address = `10.8.${round}.1`;
    const replies = await Promise.all(Array.from({ length: ATTEMPTS }, (_v, k) => attempt(k, `ghost${round}x${k}`, 'x', address)));
    const tally = (text: string) => replies.filter((r) => r.text === text).length;
    const summary = JSON.stringify(replies.map((r) => r.text));
    expect(tally(invalidUsername), summary).toBe(2);
    expect(tally(usernameLocked), summary).toBe(1);
    expect(tally(addressBlocked), summary).toBe(ATTEMPTS - 3);
    for (const reply of replies) {
      expect(reply).toMatchObject({ cmd: 'login', ok: false, error: reply.text === addressBlocked ? 'address_blocked' : 'invalid_user' });
    }
    for (let r = 0; r < REPLICAS; r++) {
      expect(await attempt(r, ACCOUNTS[0], PASSWORD, address)).toMatchObject({ ok: false, error: 'address_blocked', text: addressBlocked });
    }
  });
});
