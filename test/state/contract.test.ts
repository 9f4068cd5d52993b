import { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openState } from '../../state/connect.js';
import type { EventPage, PollResult, State, StoredEvent } from '../../state/index.js';
import { RedisState } from '../../state/redis.js';
import { mockState } from '../support/context.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

/**
 * The state contract: what the State interface (state/index.ts) promises,
 * checked with plain values on every backend the same way. Times are passed
 * in explicitly, so no clock is faked; only key expiry (TTLs) and wake-ups
 * take real time, and those are awaited with bounded polls, never sleeps.
 */

/** A fresh, empty store: the State under test and more replicas on the same data. */
interface Backend {
  state: State;
  /** Another State (another replica) on the same store. */
  replica(): Promise<State>;
}

type MakeState = () => Promise<Backend>;

const T0 = Date.UTC(2026, 0, 1);
const BIG_CAP = 1000;
const RETAIN = 60 * 60 * 1000;
/** Bounded waits for things that take real time (TTL expiry, pub/sub). */
const WAIT = { timeout: 5000, interval: 20 };

/** An encoded event, as the handlers would store it. */
function ev(n: number | string, type = 'message'): string {
  return JSON.stringify({ type, text: `event ${n}` });
}

/**
 * A page or poll result as this suite compares it: status, events, last and
 * gap (fields added to EventPage later are checked by tests of their own).
 */
function view(r: EventPage | PollResult) {
  if (!('events' in r)) return r;
  const { events, last, gap } = r;
  return 'ok' in r ? { ok: r.ok, events, last, gap } : { events, last, gap };
}

function ids(events: StoredEvent[]): number[] {
  return events.map((e) => e.id);
}

function contract(name: string, makeState: MakeState) {
  describe(`state contract: ${name}`, () => {
    let backend: Backend;
    let state: State;
    const opened: State[] = [];

    /** Another replica on the same store, closed after the test. */
    async function replica(): Promise<State> {
      const r = await backend.replica();
      opened.push(r);
      return r;
    }

    /** Adds users (with hash `h-<user>`). */
    async function users(...names: string[]): Promise<void> {
      for (const u of names) expect(await state.addUser(u, `h-${u}`)).toBe(true);
    }

    /** Adds a user and opens a session for it; returns the token. */
    async function login(user: string, now = T0, token = `${user}:token`): Promise<string> {
      if (!(await state.userExists(user))) await users(user);
      const r = await state.openSession(user, token, now, '127.0.0.1');
      expect(r.ok).toBe(true);
      return token;
    }

    function end(token: string, now: number, extra: { reason?: 'logout' | 'timeout'; idleSince?: number; event?: string } = {}) {
      return {
        token,
        reason: extra.reason ?? ('logout' as const),
        now,
        idleSince: extra.idleSince,
        event: extra.event ?? ev('end', 'session_end'),
      };
    }

    const check = (over: Partial<{ touch: boolean; rate: number; burst: number; set: Record<string, string> }> = {}) => ({
      touch: false,
      rate: 0,
      burst: 0,
      ...over,
    });

    beforeEach(async () => {
      backend = await makeState();
      state = backend.state;
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
      await state.close();
    });

    it('answers ping on a fresh store that holds nothing', async () => {
      expect(await state.ping()).toBe(true);
      expect(await state.listUsers()).toEqual([]);
      expect(await state.online()).toEqual([]);
      expect(await state.endedSince(0)).toEqual([]);
    });

    describe('users', () => {
      it('addUser creates a user once; a second add neither succeeds nor changes the hash', async () => {
        expect(await state.userExists('alice')).toBe(false);
        expect(await state.addUser('alice', 'hash-1')).toBe(true);
        expect(await state.userExists('alice')).toBe(true);
        expect(await state.addUser('alice', 'hash-2')).toBe(false);
        expect(await state.loginRecord('alice')).toEqual({ hash: 'hash-1', lockedUntil: 0 });
        expect(await state.listUsers()).toEqual(['alice']);
      });

      it('listUsers lists every user, sorted', async () => {
        await users('mallory', 'bob', 'alice');
        expect(await state.listUsers()).toEqual(['alice', 'bob', 'mallory']);
      });

      it('loginRecord is null for an unknown user', async () => {
        expect(await state.loginRecord('nobody')).toBeNull();
        expect(await state.userExists('nobody')).toBe(false);
      });

      it('setPassword refuses an unknown user without creating it', async () => {
        expect(await state.setPassword('ghost', 'h')).toBe(false);
        expect(await state.userExists('ghost')).toBe(false);
        expect(await state.loginRecord('ghost')).toBeNull();
        expect(await state.listUsers()).toEqual([]);
      });

      it('setPassword replaces the hash and lifts a lock', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 1, T0 + 60_000)).toBe(true);
        expect(await state.loginRecord('alice')).toEqual({ hash: 'h-alice', lockedUntil: T0 + 60_000 });
        expect(await state.setPassword('alice', 'new-hash')).toBe(true);
        expect(await state.loginRecord('alice')).toEqual({ hash: 'new-hash', lockedUntil: 0 });
        const opened = await state.openSession('alice', 'alice:t', T0, '127.0.0.1');
        expect(opened.ok).toBe(true);
      });

      it('countPasswordFailure never creates a user (a removal may race a failed login)', async () => {
        expect(await state.countPasswordFailure('ghost', 1, T0 + 60_000)).toBe(false);
        expect(await state.userExists('ghost')).toBe(false);
        const opened = await state.openSession('ghost', 'ghost:t', T0, '127.0.0.1');
        expect(opened).toEqual({ ok: false, reason: 'invalid_user' });
      });

      it('setPassword restarts the failure count', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 3, T0 + 1)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1)).toBe(false);
        expect(await state.setPassword('alice', 'h2')).toBe(true);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1)).toBe(true);
      });

      it('removeUser removes the user and everything of theirs; false for an unknown user', async () => {
        await users('alice', 'bob');
        const token = await login('alice');
        await state.markOnline('alice', T0);
        await state.block('alice', 'bob');
        await state.addPrivateRequest('alice', 'bob', T0 + 10_000);
        expect(await state.deliver('alice', { from: '', online: ev(1) }, BIG_CAP)).toEqual({ ok: true, id: 1, online: true });

        expect(await state.removeUser('alice')).toBe(true);
        expect(await state.userExists('alice')).toBe(false);
        expect(await state.loginRecord('alice')).toBeNull();
        expect(await state.listUsers()).toEqual(['bob']);
        expect(await state.online()).toEqual([]);
        expect(await state.blocked('alice')).toEqual([]);
        expect(await state.checkSession('alice', token, T0, check())).toEqual({ ok: false, reason: 'none' });
        expect(await state.takePrivateRequest('alice', 'bob', T0)).toBe(false);
        expect(await state.deliver('alice', { from: '', online: ev(2), offline: ev(2) }, BIG_CAP)).toEqual({
          ok: false,
          reason: 'invalid_user',
        });
        expect(await state.removeUser('alice')).toBe(false);
        expect(await state.removeUser('nobody')).toBe(false);
      });

      it('a removed user added again starts with an empty inbox', async () => {
        await users('alice');
        await state.deliver('alice', { from: '', online: ev(1), offline: ev(1) }, BIG_CAP);
        await state.deliver('alice', { from: '', online: ev(2), offline: ev(2) }, BIG_CAP);
        expect(await state.removeUser('alice')).toBe(true);
        expect(await state.addUser('alice', 'h')).toBe(true);
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
        expect(await state.deliver('alice', { from: '', online: ev(3), offline: ev(3) }, BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: false,
        });
      });
    });

    describe('login guards', () => {
      it('guardAddress with rate 0 never limits', async () => {
        for (let k = 0; k < 25; k++) {
          expect(await state.guardAddress('10.0.0.1', T0, 0, 0, 60_000)).toBe('ok');
        }
      });

      it('guardAddress allows a burst, then the rate', async () => {
        const a = '10.0.0.2';
        expect(await state.guardAddress(a, T0, 1, 2, 60_000)).toBe('ok');
        expect(await state.guardAddress(a, T0, 1, 2, 60_000)).toBe('ok');
        expect(await state.guardAddress(a, T0, 1, 2, 60_000)).toBe('rate_limited');
        expect(await state.guardAddress(a, T0 + 500, 1, 2, 60_000)).toBe('rate_limited');
        expect(await state.guardAddress(a, T0 + 1000, 1, 2, 60_000)).toBe('ok');
        expect(await state.guardAddress(a, T0 + 1000, 1, 2, 60_000)).toBe('rate_limited');
        // Saving up is capped at the burst.
        expect(await state.guardAddress(a, T0 + 100_000, 1, 2, 60_000)).toBe('ok');
        expect(await state.guardAddress(a, T0 + 100_000, 1, 2, 60_000)).toBe('ok');
        expect(await state.guardAddress(a, T0 + 100_000, 1, 2, 60_000)).toBe('rate_limited');
        // Addresses are counted apart.
        expect(await state.guardAddress('10.0.0.3', T0 + 100_000, 1, 2, 60_000)).toBe('ok');
      });

      it('guardAddress refuses a locked address until the lock ends', async () => {
        const a = '10.0.0.4';
        expect(await state.countAddressFailure(a, 1, T0 + 5000, 60_000)).toBe(true);
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 4999, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 5000, 0, 0, 60_000)).toBe('ok');
        expect(await state.guardAddress('10.0.0.5', T0, 0, 0, 60_000)).toBe('ok');
      });

      it('countAddressFailure locks on the limit-th failure, then counts again', async () => {
        const a = '10.0.0.6';
        expect(await state.countAddressFailure(a, 3, T0 + 1000, 60_000)).toBe(false);
        expect(await state.countAddressFailure(a, 3, T0 + 1000, 60_000)).toBe(false);
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('ok');
        expect(await state.countAddressFailure(a, 3, T0 + 1000, 60_000)).toBe(true);
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.countAddressFailure(a, 3, T0 + 9000, 60_000)).toBe(false);
        expect(await state.countAddressFailure(a, 3, T0 + 9000, 60_000)).toBe(false);
        expect(await state.countAddressFailure(a, 3, T0 + 9000, 60_000)).toBe(true);
        expect(await state.guardAddress(a, T0 + 5000, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 9000, 0, 0, 60_000)).toBe('ok');
      });

      it('an address record is forgotten after its ttl', async () => {
        const a = '10.0.0.7';
        expect(await state.countAddressFailure(a, 1, T0 + 3_600_000, 300)).toBe(true);
        expect(await state.guardAddress(a, T0, 0, 0, 300)).toBe('address_blocked');
        await vi.waitFor(async () => expect(await state.guardAddress(a, T0, 0, 0, 300)).toBe('ok'), WAIT);
      });

      it("an address's rate bucket is forgotten after its ttl", async () => {
        const a = '10.0.0.8';
        expect(await state.guardAddress(a, T0, 1, 1, 300)).toBe('ok');
        expect(await state.guardAddress(a, T0, 1, 1, 300)).toBe('rate_limited');
        // Each look renews the ttl, so look less often than it lasts.
        await vi.waitFor(async () => expect(await state.guardAddress(a, T0, 1, 1, 300)).toBe('ok'), { timeout: 5000, interval: 450 });
      });

      it('countPasswordFailure locks the account on the limit-th failure, then counts again', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(false);
        expect((await state.loginRecord('alice'))?.lockedUntil).toBe(0);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(true);
        expect(await state.loginRecord('alice')).toEqual({ hash: 'h-alice', lockedUntil: T0 + 1000 });
        expect(await state.countPasswordFailure('alice', 3, T0 + 7000)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 7000)).toBe(false);
        expect((await state.loginRecord('alice'))?.lockedUntil).toBe(T0 + 1000);
        expect(await state.countPasswordFailure('alice', 3, T0 + 7000)).toBe(true);
        expect((await state.loginRecord('alice'))?.lockedUntil).toBe(T0 + 7000);
      });

      it('a successful login restarts the password failure count', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(false);
        const token = await login('alice');
        expect((await state.endSession('alice', end(token, T0), BIG_CAP, RETAIN)).ok).toBe(true);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(false);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000)).toBe(true);
      });
    });

    describe('openSession', () => {
      it('refuses an unknown user', async () => {
        expect(await state.openSession('nobody', 'nobody:t', T0, '127.0.0.1')).toEqual({ ok: false, reason: 'invalid_user' });
        expect(await state.userExists('nobody')).toBe(false);
      });

      it('opens a first session with nothing seen', async () => {
        await users('alice');
        expect(await state.openSession('alice', 'alice:t', T0, '127.0.0.1')).toEqual({
          ok: true,
          seen: 0,
          page: { last: 0, first: 1 },
        });
        expect(await state.checkSession('alice', 'alice:t', T0, check())).toEqual({ ok: true, p2pHost: '', p2pPort: '', cursor: 0 });
      });

      it('refuses a second session while one is live, allows one after it ended', async () => {
        const token = await login('alice');
        expect(await state.openSession('alice', 'alice:other', T0 + 1, '10.0.0.9')).toEqual({ ok: false, reason: 'already_logged_in' });
        expect(await state.checkSession('alice', token, T0 + 1, check())).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', 'alice:other', T0 + 1, check())).toEqual({ ok: false, reason: 'none' });
        expect((await state.endSession('alice', end(token, T0 + 2), BIG_CAP, RETAIN)).ok).toBe(true);
        expect(await state.openSession('alice', 'alice:other', T0 + 3, '10.0.0.9')).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', 'alice:other', T0 + 3, check())).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', token, T0 + 3, check())).toEqual({ ok: false, reason: 'none' });
      });

      it('refuses a locked account while the lock lasts', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 1, T0 + 5000)).toBe(true);
        expect(await state.openSession('alice', 'alice:t', T0, '127.0.0.1')).toEqual({ ok: false, reason: 'account_blocked' });
        expect(await state.openSession('alice', 'alice:t', T0 + 4999, '127.0.0.1')).toEqual({ ok: false, reason: 'account_blocked' });
        expect(await state.checkSession('alice', 'alice:t', T0, check())).toEqual({ ok: false, reason: 'none' });
        expect(await state.openSession('alice', 'alice:t', T0 + 5000, '127.0.0.1')).toMatchObject({ ok: true });
      });

      it('starts after what the last session saw: its session_end event', async () => {
        const token = await login('alice');
        expect(await state.deliver('alice', { from: '', online: ev(1) }, BIG_CAP)).toMatchObject({ ok: true, id: 1 });
        expect(await state.deliver('alice', { from: '', online: ev(2) }, BIG_CAP)).toMatchObject({ ok: true, id: 2 });
        expect(await state.endSession('alice', end(token, T0 + 10), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(await state.deliver('alice', { from: 'bob', online: ev(4), offline: ev('stored 4') }, BIG_CAP)).toEqual({
          ok: true,
          id: 4,
          online: false,
        });
        expect(await state.openSession('alice', 'alice:t2', T0 + 20, '127.0.0.1')).toEqual({
          ok: true,
          seen: 3,
          page: { last: 4, first: 1 },
        });
        expect(await state.checkSession('alice', 'alice:t2', T0 + 20, check())).toMatchObject({ ok: true, cursor: 3 });
        expect(view(await state.read('alice', 3, 10))).toEqual({ events: [{ id: 4, json: ev('stored 4') }], last: 4, gap: false });
      });

      it('reports the first event still kept when the backlog was trimmed', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 10), 2, RETAIN)).toEqual({ ok: true, id: 1 });
        for (let n = 2; n <= 4; n++) {
          expect(await state.deliver('alice', { from: '', online: ev(n), offline: ev(n) }, 2)).toEqual({ ok: true, id: n, online: false });
        }
        expect(await state.openSession('alice', 'alice:t2', T0 + 20, '127.0.0.1')).toEqual({
          ok: true,
          seen: 1,
          page: { last: 4, first: 3 },
        });
      });
    });

    describe('checkSession', () => {
      it('is none without a session or with another token', async () => {
        await users('alice');
        expect(await state.checkSession('alice', 'alice:t', T0, check())).toEqual({ ok: false, reason: 'none' });
        await login('alice');
        expect(await state.checkSession('alice', 'alice:wrong', T0, check())).toEqual({ ok: false, reason: 'none' });
        expect(await state.checkSession('alice', '', T0, check())).toEqual({ ok: false, reason: 'none' });
        expect(await state.checkSession('bob', 'alice:token', T0, check())).toEqual({ ok: false, reason: 'none' });
      });

      it('records `set` fields and returns them from then on', async () => {
        const token = await login('alice');
        expect(await state.checkSession('alice', token, T0, check({ set: { p2pHost: '192.0.2.7', p2pPort: '4567' } }))).toEqual({
          ok: true,
          p2pHost: '192.0.2.7',
          p2pPort: '4567',
          cursor: 0,
        });
        expect(await state.checkSession('alice', token, T0 + 1, check())).toEqual({
          ok: true,
          p2pHost: '192.0.2.7',
          p2pPort: '4567',
          cursor: 0,
        });
        expect(await state.checkSession('alice', token, T0 + 2, check({ set: { cursor: '12' } }))).toEqual({
          ok: true,
          p2pHost: '192.0.2.7',
          p2pPort: '4567',
          cursor: 12,
        });
      });

      it('touch resets the idle timer; a check without touch does not', async () => {
        const token = await login('alice', T0);
        expect(await state.checkSession('alice', token, T0 + 5000, check({ touch: false }))).toMatchObject({ ok: true });
        expect(await state.endSession('alice', end(token, T0 + 6000, { reason: 'timeout', idleSince: T0 + 4000 }), BIG_CAP, RETAIN)).toMatchObject({
          ok: true,
        });

        const token2 = await login('alice', T0 + 10_000, 'alice:t2');
        expect(await state.checkSession('alice', token2, T0 + 15_000, check({ touch: true }))).toMatchObject({ ok: true });
        expect(
          await state.endSession('alice', end(token2, T0 + 16_000, { reason: 'timeout', idleSince: T0 + 14_000 }), BIG_CAP, RETAIN),
        ).toEqual({ ok: false, reason: 'active', lastActive: T0 + 15_000 });
      });

      it('limits the command rate (rate 0 = none)', async () => {
        const token = await login('alice');
        for (let k = 0; k < 20; k++) {
          expect(await state.checkSession('alice', token, T0, check({ rate: 0, burst: 0 }))).toMatchObject({ ok: true });
        }
        const limited = check({ rate: 2, burst: 3 });
        expect(await state.checkSession('alice', token, T0, limited)).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', token, T0, limited)).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', token, T0, limited)).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', token, T0, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        expect(await state.checkSession('alice', token, T0 + 250, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        expect(await state.checkSession('alice', token, T0 + 500, limited)).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', token, T0 + 500, limited)).toEqual({ ok: false, reason: 'rate_limited' });
      });

      it('a rate-limited check neither touches nor sets fields', async () => {
        const token = await login('alice', T0);
        const limited = check({ rate: 1, burst: 1, touch: true });
        expect(await state.checkSession('alice', token, T0 + 2000, limited)).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', token, T0 + 2500, { ...limited, set: { p2pPort: '9' } })).toEqual({
          ok: false,
          reason: 'rate_limited',
        });
        expect(await state.checkSession('alice', token, T0 + 2600, check())).toMatchObject({ ok: true, p2pPort: '' });
        expect(
          await state.endSession('alice', end(token, T0 + 3000, { reason: 'timeout', idleSince: T0 + 2000 }), BIG_CAP, RETAIN),
        ).toMatchObject({ ok: true });
      });

      it('reports an ended session with its reason and cursor', async () => {
        const token = await login('alice');
        expect(await state.checkSession('alice', token, T0, check({ set: { cursor: '0' } }))).toMatchObject({ ok: true });
        await state.deliver('alice', { from: '', online: ev(1) }, BIG_CAP);
        expect(view(await state.poll('alice', token, null, 10))).toMatchObject({ ok: true, last: 1 });
        expect(await state.endSession('alice', end(token, T0 + 10, { reason: 'timeout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
        expect(await state.checkSession('alice', token, T0 + 20, check({ touch: true, rate: 1, burst: 1 }))).toEqual({
          ok: false,
          reason: 'ended',
          cursor: 1,
          ended: 'timeout',
        });
        expect(await state.checkSession('alice', 'alice:wrong', T0 + 20, check())).toEqual({ ok: false, reason: 'none' });

        const token2 = await login('alice', T0 + 30, 'alice:t2');
        expect(await state.endSession('alice', end(token2, T0 + 40, { reason: 'logout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(await state.checkSession('alice', token2, T0 + 50, check())).toEqual({ ok: false, reason: 'ended', cursor: 2, ended: 'logout' });
      });
    });

    describe('deliver', () => {
      it('refuses an unknown user', async () => {
        expect(await state.deliver('nobody', { from: '', online: ev(1), offline: ev(1) }, BIG_CAP)).toEqual({
          ok: false,
          reason: 'invalid_user',
        });
        expect(await state.userExists('nobody')).toBe(false);
      });

      it('refuses a sender the recipient blocked, and only that sender', async () => {
        await users('alice', 'bob', 'carol');
        await login('alice');
        expect(await state.block('alice', 'bob')).toBe(true);
        expect(await state.deliver('alice', { from: 'bob', online: ev(1), offline: ev(1) }, BIG_CAP)).toEqual({ ok: false, reason: 'blocked' });
        expect(await state.deliver('alice', { from: 'carol', online: ev(2) }, BIG_CAP)).toEqual({ ok: true, id: 1, online: true });
        expect(await state.deliver('alice', { from: '', online: ev(3) }, BIG_CAP)).toEqual({ ok: true, id: 2, online: true });
        // Blocks are one-way.
        expect(await state.deliver('bob', { from: 'alice', online: ev(4), offline: ev(4) }, BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: false,
        });
        expect(view(await state.read('alice', 0, 10))).toEqual({
          events: [
            { id: 1, json: ev(2) },
            { id: 2, json: ev(3) },
          ],
          last: 2,
          gap: false,
        });
      });

      it('to an offline user: dropped without an offline form, stored in its offline form otherwise', async () => {
        await users('alice');
        expect(await state.deliver('alice', { from: 'bob', online: ev('live') }, BIG_CAP)).toEqual({ ok: false, reason: 'offline' });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
        expect(await state.deliver('alice', { from: 'bob', online: ev('live'), offline: ev('stored') }, BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: false,
        });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [{ id: 1, json: ev('stored') }], last: 1, gap: false });
      });

      it('to an online user: stored in its online form', async () => {
        await login('alice');
        expect(await state.deliver('alice', { from: 'bob', online: ev('live'), offline: ev('stored') }, BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: true,
        });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [{ id: 1, json: ev('live') }], last: 1, gap: false });
      });

      it('a user whose session ended is offline', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.deliver('alice', { from: '', online: ev('signal') }, BIG_CAP)).toEqual({ ok: false, reason: 'offline' });
        expect(await state.deliver('alice', { from: '', online: ev('live'), offline: ev('stored') }, BIG_CAP)).toEqual({
          ok: true,
          id: 2,
          online: false,
        });
      });

      it('gives consecutive ids across online, offline and session_end events', async () => {
        await users('alice');
        const got: number[] = [];
        const push = async (online: boolean) => {
          const r = await state.deliver('alice', { from: '', online: ev('on'), offline: ev('off') }, BIG_CAP);
          expect(r).toMatchObject({ ok: true, online });
          if (r.ok) got.push(r.id);
        };
        await push(false);
        await push(false);
        const token = await login('alice', T0 + 1);
        await push(true);
        const ended = await state.endSession('alice', end(token, T0 + 2), BIG_CAP, RETAIN);
        expect(ended).toEqual({ ok: true, id: 4 });
        await push(false);
        expect(got).toEqual([1, 2, 3, 5]);
        expect(ids((await state.read('alice', 0, 100)).events)).toEqual([1, 2, 3, 4, 5]);
      });

      it('concurrent deliveries (also from another replica) get distinct consecutive ids', async () => {
        await users('alice');
        const other = await replica();
        const results = await Promise.all(
          Array.from({ length: 30 }, (_v, n) =>
            (n % 2 === 0 ? state : other).deliver('alice', { from: '', online: ev(n), offline: ev(n) }, BIG_CAP),
          ),
        );
        const got = results.map((r) => (r.ok ? r.id : -1)).sort((a, b) => a - b);
        expect(got).toEqual(Array.from({ length: 30 }, (_v, n) => n + 1));
        const page = await state.read('alice', 0, 100);
        expect(page.last).toBe(30);
        expect(ids(page.events)).toEqual(got);
        // Each id names the event that delivery stored.
        const byId = new Map(page.events.map((e) => [e.id, e.json]));
        results.forEach((r, n) => expect(r.ok && byId.get(r.id)).toBe(ev(n)));
      });
    });

    describe('read', () => {
      async function fill(user: string, count: number, cap = BIG_CAP): Promise<void> {
        await users(user);
        for (let n = 1; n <= count; n++) {
          expect(await state.deliver(user, { from: '', online: ev(n), offline: ev(n) }, cap)).toMatchObject({ ok: true, id: n });
        }
      }

      it('returns the events after a cursor, in order', async () => {
        await fill('alice', 5);
        expect(view(await state.read('alice', 2, 10))).toEqual({
          events: [
            { id: 3, json: ev(3) },
            { id: 4, json: ev(4) },
            { id: 5, json: ev(5) },
          ],
          last: 5,
          gap: false,
        });
        expect(ids((await state.read('alice', 0, 10)).events)).toEqual([1, 2, 3, 4, 5]);
      });

      it('returns at most `limit` events, the oldest first', async () => {
        await fill('alice', 5);
        expect(view(await state.read('alice', 0, 2))).toEqual({
          events: [
            { id: 1, json: ev(1) },
            { id: 2, json: ev(2) },
          ],
          last: 5,
          gap: false,
        });
        expect(ids((await state.read('alice', 3, 1)).events)).toEqual([4]);
        expect(view(await state.read('alice', 1, 0))).toEqual({ events: [], last: 5, gap: false });
      });

      it('returns nothing at or past the newest event', async () => {
        await fill('alice', 3);
        expect(view(await state.read('alice', 3, 10))).toEqual({ events: [], last: 3, gap: false });
        expect(view(await state.read('alice', 99, 10))).toEqual({ events: [], last: 3, gap: false });
      });

      it('an empty or unknown inbox reads as empty', async () => {
        await users('alice');
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
        expect(view(await state.read('nobody', 0, 10))).toEqual({ events: [], last: 0, gap: false });
      });

      it('keeps only `cap` events and reports the gap after a trimmed cursor', async () => {
        await fill('alice', 6, 3);
        expect(view(await state.read('alice', 0, 10))).toEqual({
          events: [
            { id: 4, json: ev(4) },
            { id: 5, json: ev(5) },
            { id: 6, json: ev(6) },
          ],
          last: 6,
          gap: true,
        });
        expect(view(await state.read('alice', 2, 10))).toMatchObject({ last: 6, gap: true });
        expect(ids((await state.read('alice', 2, 1)).events)).toEqual([4]);
        expect(view(await state.read('alice', 3, 10))).toMatchObject({ last: 6, gap: false });
        expect(ids((await state.read('alice', 3, 10)).events)).toEqual([4, 5, 6]);
        expect(view(await state.read('alice', 6, 10))).toEqual({ events: [], last: 6, gap: false });
      });

      it("a page's cursor is the last event it returned, else the cursor it read after", async () => {
        await fill('alice', 5);
        expect((await state.read('alice', 0, 10)).cursor).toBe(5);
        expect((await state.read('alice', 1, 2)).cursor).toBe(3);
        expect((await state.read('alice', 4, 1)).cursor).toBe(5);
        expect((await state.read('alice', 5, 10)).cursor).toBe(5);
        expect((await state.read('alice', 2, 0)).cursor).toBe(2);
        await users('bob');
        expect((await state.read('bob', 0, 10)).cursor).toBe(0);
      });

      it("a trimmed page's cursor is the last event it returned", async () => {
        await fill('alice', 6, 3);
        expect(await state.read('alice', 1, 2)).toMatchObject({ cursor: 5, gap: true, last: 6 });
        expect(await state.read('alice', 0, 10)).toMatchObject({ cursor: 6, gap: true, last: 6 });
      });

      it('keeps event bodies byte for byte', async () => {
        await users('alice');
        const bodies = [
          JSON.stringify({ type: 'message', text: 'héllo wörld ✓ 日本語 🙂' }),
          JSON.stringify({ type: 'message', text: 'line\nbreak "quoted" \\ back\tslash' }),
          JSON.stringify({ type: 'message', text: ' ' }),
        ];
        for (const body of bodies) await state.deliver('alice', { from: '', online: body, offline: body }, BIG_CAP);
        expect((await state.read('alice', 0, 10)).events).toEqual(bodies.map((json, k) => ({ id: k + 1, json })));
      });
    });

    describe('poll', () => {
      async function session(count: number): Promise<string> {
        const token = await login('alice');
        for (let n = 1; n <= count; n++) {
          expect(await state.deliver('alice', { from: '', online: ev(n) }, BIG_CAP)).toEqual({ ok: true, id: n, online: true });
        }
        return token;
      }

      it('is none without the session token', async () => {
        await users('alice');
        expect(view(await state.poll('alice', 'alice:t', null, 10))).toEqual({ ok: false, reason: 'none' });
        await session(2);
        expect(view(await state.poll('alice', 'alice:wrong', 0, 10))).toEqual({ ok: false, reason: 'none' });
        expect(view(await state.poll('alice', 'alice:wrong', null, 10))).toEqual({ ok: false, reason: 'none' });
      });

      it('with `after` returns the events after it and acknowledges it as the stored cursor', async () => {
        const token = await session(4);
        expect(view(await state.poll('alice', token, 1, 2))).toEqual({
          ok: true,
          events: [
            { id: 2, json: ev(2) },
            { id: 3, json: ev(3) },
          ],
          last: 4,
          gap: false,
        });
        expect(await state.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: 1 });
        // Acknowledging is not reading: the stored cursor does not move past `after`.
        expect(ids(((await state.poll('alice', token, null, 10)) as { events: StoredEvent[] }).events)).toEqual([2, 3, 4]);
      });

      it('without `after` reads from the stored cursor and advances it past what it returned', async () => {
        const token = await session(5);
        const first = await state.poll('alice', token, null, 2);
        expect(view(first)).toEqual({
          ok: true,
          events: [
            { id: 1, json: ev(1) },
            { id: 2, json: ev(2) },
          ],
          last: 5,
          gap: false,
        });
        expect(await state.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: 2 });
        expect(ids(((await state.poll('alice', token, null, 10)) as { events: StoredEvent[] }).events)).toEqual([3, 4, 5]);
        expect(view(await state.poll('alice', token, null, 10))).toEqual({ ok: true, events: [], last: 5, gap: false });
        expect(await state.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: 5 });
        await state.deliver('alice', { from: '', online: ev(6) }, BIG_CAP);
        expect(view(await state.poll('alice', token, null, 10))).toEqual({ ok: true, events: [{ id: 6, json: ev(6) }], last: 6, gap: false });
      });

      it('starts a new session at the cursor openSession reported', async () => {
        const token = await session(2);
        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        await state.deliver('alice', { from: '', online: ev(4), offline: ev('stored 4') }, BIG_CAP);
        const token2 = await login('alice', T0 + 2, 'alice:t2');
        expect(view(await state.poll('alice', token2, null, 10))).toEqual({ ok: true, events: [{ id: 4, json: ev('stored 4') }], last: 4, gap: false });
      });

      it("a poll's cursor is the last event it returned, else the cursor it read after", async () => {
        const token = await session(4);
        expect(await state.poll('alice', token, null, 3)).toMatchObject({ ok: true, cursor: 3 });
        expect(await state.poll('alice', token, null, 10)).toMatchObject({ ok: true, cursor: 4 });
        expect(await state.poll('alice', token, null, 10)).toMatchObject({ ok: true, events: [], cursor: 4 });
        expect(await state.poll('alice', token, 1, 2)).toMatchObject({ ok: true, cursor: 3 });
        expect(await state.poll('alice', token, 2, 0)).toMatchObject({ ok: true, events: [], cursor: 2 });
        expect(await state.poll('alice', token, 4, 10)).toMatchObject({ ok: true, events: [], cursor: 4 });
      });

      it('reports a gap when the events after the cursor were trimmed', async () => {
        const token = await login('alice');
        for (let n = 1; n <= 5; n++) await state.deliver('alice', { from: '', online: ev(n) }, 2);
        expect(view(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          events: [
            { id: 4, json: ev(4) },
            { id: 5, json: ev(5) },
          ],
          last: 5,
          gap: true,
        });
        expect(view(await state.poll('alice', token, null, 10))).toEqual({ ok: true, events: [], last: 5, gap: false });
      });

      it('an ended session reads up to its session_end event, then answers ended', async () => {
        const token = await session(2);
        const endEvent = ev('bye', 'session_end');
        expect(await state.endSession('alice', end(token, T0 + 1, { event: endEvent }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(view(await state.poll('alice', token, 1, 10))).toEqual({
          ok: true,
          events: [
            { id: 2, json: ev(2) },
            { id: 3, json: endEvent },
          ],
          last: 3,
          gap: false,
        });
        expect(view(await state.poll('alice', token, 3, 10))).toEqual({ ok: false, reason: 'ended' });
        expect(view(await state.poll('alice', token, 99, 10))).toEqual({ ok: false, reason: 'ended' });
        expect(view(await state.poll('alice', 'alice:wrong', 1, 10))).toEqual({ ok: false, reason: 'none' });
      });

      it('an ended session polled from its stored cursor reads everything once, then answers ended', async () => {
        const token = await session(2);
        const endEvent = ev('bye', 'session_end');
        expect(await state.endSession('alice', end(token, T0 + 1, { event: endEvent }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(view(await state.poll('alice', token, null, 2))).toEqual({
          ok: true,
          events: [
            { id: 1, json: ev(1) },
            { id: 2, json: ev(2) },
          ],
          last: 3,
          gap: false,
        });
        expect(view(await state.poll('alice', token, null, 10))).toEqual({ ok: true, events: [{ id: 3, json: endEvent }], last: 3, gap: false });
        expect(view(await state.poll('alice', token, null, 10))).toEqual({ ok: false, reason: 'ended' });
        expect(view(await state.poll('alice', token, null, 10))).toEqual({ ok: false, reason: 'ended' });
        expect(view(await state.poll('alice', 'alice:wrong', null, 10))).toEqual({ ok: false, reason: 'none' });
      });
    });

    describe('endSession', () => {
      it('is none without a session', async () => {
        await users('alice');
        expect(await state.endSession('alice', end('', T0), BIG_CAP, RETAIN)).toEqual({ ok: false, reason: 'none' });
        expect(await state.endSession('nobody', end('', T0), BIG_CAP, RETAIN)).toEqual({ ok: false, reason: 'none' });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
      });

      it('ends a session once: appends its event, and a second call is none', async () => {
        const token = await login('alice');
        const endEvent = ev('logout', 'session_end');
        expect(await state.endSession('alice', end(token, T0 + 5, { event: endEvent }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.endSession('alice', end(token, T0 + 6), BIG_CAP, RETAIN)).toEqual({ ok: false, reason: 'none' });
        expect(await state.endSession('alice', end('', T0 + 6, { reason: 'timeout', idleSince: T0 + 6 }), BIG_CAP, RETAIN)).toEqual({
          ok: false,
          reason: 'none',
        });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [{ id: 1, json: endEvent }], last: 1, gap: false });
      });

      it('concurrent ends (also from another replica) succeed exactly once', async () => {
        const token = await login('alice');
        const other = await replica();
        const results = await Promise.all([
          state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN),
          other.endSession('alice', end('', T0 + 1, { reason: 'timeout', idleSince: T0 + 1 }), BIG_CAP, RETAIN),
          state.endSession('alice', end('', T0 + 1, { reason: 'timeout', idleSince: T0 + 1 }), BIG_CAP, RETAIN),
          other.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN),
        ]);
        expect(results.filter((r) => r.ok)).toEqual([{ ok: true, id: 1 }]);
        expect(results.filter((r) => !r.ok)).toEqual([
          { ok: false, reason: 'none' },
          { ok: false, reason: 'none' },
          { ok: false, reason: 'none' },
        ]);
        expect((await state.read('alice', 0, 10)).last).toBe(1);
      });

      it('a logout with the wrong token is none and leaves the session live', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end('alice:wrong', T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: false, reason: 'none' });
        expect(await state.checkSession('alice', token, T0 + 2, check())).toMatchObject({ ok: true });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
      });

      it("token '' ends whichever session is live", async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end('', T0 + 1, { reason: 'timeout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.checkSession('alice', token, T0 + 2, check())).toMatchObject({ ok: false, reason: 'ended', ended: 'timeout' });
      });

      it('with an idle deadline: active (with the real last activity) until the session is idle that long', async () => {
        const token = await login('alice', T0);
        expect(await state.checkSession('alice', token, T0 + 5000, check({ touch: true }))).toMatchObject({ ok: true });
        expect(await state.endSession('alice', end('', T0 + 6000, { reason: 'timeout', idleSince: T0 + 4999 }), BIG_CAP, RETAIN)).toEqual({
          ok: false,
          reason: 'active',
          lastActive: T0 + 5000,
        });
        expect(await state.checkSession('alice', token, T0 + 6000, check())).toMatchObject({ ok: true });
        expect(view(await state.read('alice', 0, 10))).toMatchObject({ events: [], last: 0 });
        expect(await state.endSession('alice', end('', T0 + 7000, { reason: 'timeout', idleSince: T0 + 5000 }), BIG_CAP, RETAIN)).toEqual({
          ok: true,
          id: 1,
        });
        expect(await state.checkSession('alice', token, T0 + 7000, check())).toMatchObject({ ok: false, reason: 'ended', ended: 'timeout' });
      });

      it('a session never touched counts as active since it opened', async () => {
        await login('alice', T0 + 1000);
        expect(await state.endSession('alice', end('', T0 + 2000, { reason: 'timeout', idleSince: T0 + 999 }), BIG_CAP, RETAIN)).toEqual({
          ok: false,
          reason: 'active',
          lastActive: T0 + 1000,
        });
      });

      it('drops pending private-chat requests to the user', async () => {
        const token = await login('alice');
        await state.addPrivateRequest('alice', 'bob', T0 + 60_000);
        await state.addPrivateRequest('bob', 'alice', T0 + 60_000);
        expect((await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).ok).toBe(true);
        expect(await state.takePrivateRequest('alice', 'bob', T0 + 2)).toBe(false);
        expect(await state.takePrivateRequest('bob', 'alice', T0 + 2)).toBe(true);
      });

      it('trims the inbox to `cap` when appending its event', async () => {
        const token = await login('alice');
        for (let n = 1; n <= 3; n++) await state.deliver('alice', { from: '', online: ev(n) }, BIG_CAP);
        expect(await state.endSession('alice', end(token, T0 + 1), 2, RETAIN)).toEqual({ ok: true, id: 4 });
        expect(ids((await state.read('alice', 0, 10)).events)).toEqual([3, 4]);
      });

      it('keeps the ended session readable for retainMs, then forgets it', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, 300)).toEqual({ ok: true, id: 1 });
        expect(await state.checkSession('alice', token, T0 + 2, check())).toMatchObject({ ok: false, reason: 'ended' });
        await vi.waitFor(
          async () => expect(await state.checkSession('alice', token, T0 + 3, check())).toEqual({ ok: false, reason: 'none' }),
          WAIT,
        );
        expect(view(await state.poll('alice', token, 0, 10))).toEqual({ ok: false, reason: 'none' });
        // The user and their inbox stay.
        expect(view(await state.read('alice', 0, 10))).toMatchObject({ last: 1 });
        expect(await state.openSession('alice', 'alice:t2', T0 + 4, '127.0.0.1')).toMatchObject({ ok: true, seen: 1 });
      });
    });

    describe('presence and history', () => {
      it('markOnline / online list the online users', async () => {
        await state.markOnline('alice', T0 + 1);
        await state.markOnline('bob', T0 + 2);
        await state.markOnline('alice', T0 + 3);
        expect((await state.online()).sort()).toEqual(['alice', 'bob']);
      });

      it('markOffline takes a user off and records when their session ended', async () => {
        await state.markOnline('alice', T0);
        await state.markOnline('bob', T0);
        await state.markOffline('alice', T0 + 1000);
        expect(await state.online()).toEqual(['bob']);
        expect(await state.endedSince(T0 + 1000)).toEqual(['alice']);
        expect(await state.endedSince(T0 + 1001)).toEqual([]);
      });

      it('markOffline keeps a user online whose newer login raced ahead', async () => {
        await state.markOnline('alice', T0 + 2000);
        await state.markOffline('alice', T0 + 1000);
        expect(await state.online()).toEqual(['alice']);
        expect(await state.endedSince(T0)).toEqual(['alice']);
        await state.markOffline('alice', T0 + 2000);
        expect(await state.online()).toEqual([]);
      });

      it('endedSince lists users whose last session ended at or after `since`', async () => {
        await state.markOffline('alice', T0 + 1000);
        await state.markOffline('bob', T0 + 2000);
        await state.markOffline('carol', T0 + 3000);
        expect((await state.endedSince(T0 + 2000)).sort()).toEqual(['bob', 'carol']);
        expect((await state.endedSince(T0)).sort()).toEqual(['alice', 'bob', 'carol']);
        expect(await state.endedSince(T0 + 3001)).toEqual([]);
        // Only the last end counts.
        await state.markOffline('alice', T0 + 4000);
        expect((await state.endedSince(T0 + 3500)).sort()).toEqual(['alice']);
      });

      it('idleCandidates lists online users with activity at or before `before`, oldest first, up to `limit`', async () => {
        await state.markOnline('alice', T0 + 1000);
        await state.markOnline('bob', T0 + 2000);
        await state.markOnline('carol', T0 + 3000);
        expect(await state.idleCandidates(T0 + 2000, 10)).toEqual(['alice', 'bob']);
        expect(await state.idleCandidates(T0 + 5000, 2)).toEqual(['alice', 'bob']);
        expect(await state.idleCandidates(T0 + 5000, 1)).toEqual(['alice']);
        expect(await state.idleCandidates(T0 + 999, 10)).toEqual([]);
        await state.markOffline('alice', T0 + 4000);
        expect(await state.idleCandidates(T0 + 5000, 10)).toEqual(['bob', 'carol']);
      });

      it('noteActivity moves an online user out of the idle candidates, and never marks anyone online', async () => {
        await state.markOnline('alice', T0 + 1000);
        await state.markOnline('bob', T0 + 1000);
        await state.noteActivity('alice', T0 + 5000);
        expect(await state.idleCandidates(T0 + 2000, 10)).toEqual(['bob']);
        expect(await state.idleCandidates(T0 + 5000, 10)).toEqual(['bob', 'alice']);
        await state.noteActivity('carol', T0 + 5000);
        expect((await state.online()).sort()).toEqual(['alice', 'bob']);
        expect(await state.idleCandidates(T0 + 9000, 10)).toEqual(['bob', 'alice']);
      });
    });

    describe('blocks', () => {
      it('block / unblock report whether anything changed; blocked lists the targets', async () => {
        expect(await state.blocked('alice')).toEqual([]);
        expect(await state.block('alice', 'bob')).toBe(true);
        expect(await state.block('alice', 'bob')).toBe(false);
        expect(await state.block('alice', 'carol')).toBe(true);
        expect((await state.blocked('alice')).sort()).toEqual(['bob', 'carol']);
        expect(await state.blocked('bob')).toEqual([]);
        expect(await state.unblock('alice', 'bob')).toBe(true);
        expect(await state.unblock('alice', 'bob')).toBe(false);
        expect(await state.unblock('alice', 'nobody')).toBe(false);
        expect(await state.blocked('alice')).toEqual(['carol']);
      });

      it('an unblocked sender is delivered to again', async () => {
        await users('alice');
        await state.block('alice', 'bob');
        expect(await state.deliver('alice', { from: 'bob', online: ev(1), offline: ev(1) }, BIG_CAP)).toEqual({ ok: false, reason: 'blocked' });
        await state.unblock('alice', 'bob');
        expect(await state.deliver('alice', { from: 'bob', online: ev(2), offline: ev(2) }, BIG_CAP)).toEqual({ ok: true, id: 1, online: false });
      });

      it('blockersOf finds the candidates who blocked the user', async () => {
        await state.block('alice', 'bob');
        await state.block('dave', 'bob');
        await state.block('carol', 'alice');
        expect(await state.blockersOf('bob', ['alice', 'carol', 'dave', 'erin'])).toEqual(new Set(['alice', 'dave']));
        expect(await state.blockersOf('bob', ['carol'])).toEqual(new Set());
        expect(await state.blockersOf('bob', [])).toEqual(new Set());
        expect(await state.blockersOf('alice', ['alice', 'bob', 'carol'])).toEqual(new Set(['carol']));
      });
    });

    describe('private-chat requests', () => {
      it('a request is taken once', async () => {
        await state.addPrivateRequest('alice', 'bob', T0 + 1000);
        expect(await state.takePrivateRequest('alice', 'bob', T0)).toBe(true);
        expect(await state.takePrivateRequest('alice', 'bob', T0)).toBe(false);
      });

      it('requests are kept per target and requester', async () => {
        await state.addPrivateRequest('alice', 'bob', T0 + 1000);
        await state.addPrivateRequest('alice', 'carol', T0 + 1000);
        expect(await state.takePrivateRequest('bob', 'alice', T0)).toBe(false);
        expect(await state.takePrivateRequest('alice', 'dave', T0)).toBe(false);
        expect(await state.takePrivateRequest('alice', 'carol', T0)).toBe(true);
        expect(await state.takePrivateRequest('alice', 'bob', T0)).toBe(true);
      });

      it('a request is good up to its expiry; an expired one is refused and gone', async () => {
        await state.addPrivateRequest('alice', 'bob', T0 + 1000);
        expect(await state.takePrivateRequest('alice', 'bob', T0 + 1000)).toBe(true);
        await state.addPrivateRequest('alice', 'bob', T0 + 1000);
        expect(await state.takePrivateRequest('alice', 'bob', T0 + 1001)).toBe(false);
        expect(await state.takePrivateRequest('alice', 'bob', T0)).toBe(false);
      });

      it('a newer request replaces the expiry of an older one', async () => {
        await state.addPrivateRequest('alice', 'bob', T0 + 1000);
        await state.addPrivateRequest('alice', 'bob', T0 + 9000);
        expect(await state.takePrivateRequest('alice', 'bob', T0 + 5000)).toBe(true);
      });

      it('a dropped request cannot be taken', async () => {
        await state.addPrivateRequest('alice', 'bob', T0 + 1000);
        await state.dropPrivateRequest('alice', 'bob');
        await state.dropPrivateRequest('alice', 'nobody');
        expect(await state.takePrivateRequest('alice', 'bob', T0)).toBe(false);
      });

      it('concurrent takes (also from another replica) succeed exactly once', async () => {
        await state.addPrivateRequest('alice', 'bob', T0 + 1000);
        const other = await replica();
        const results = await Promise.all([
          state.takePrivateRequest('alice', 'bob', T0),
          other.takePrivateRequest('alice', 'bob', T0),
          state.takePrivateRequest('alice', 'bob', T0),
          other.takePrivateRequest('alice', 'bob', T0),
        ]);
        expect(results.filter(Boolean)).toEqual([true]);
      });
    });

    describe('wake-ups', () => {
      type Wake = [string, number, string];

      function recorder(s: State): Wake[] {
        const wakes: Wake[] = [];
        s.onWake((user, id, json) => wakes.push([user, id, json]));
        return wakes;
      }

      it('a watched user is woken with (user, id, json) when an event is appended', async () => {
        await users('alice', 'bob');
        const wakes = recorder(state);
        await state.watch('alice');
        await login('alice');
        expect(await state.deliver('alice', { from: 'bob', online: ev('live'), offline: ev('stored') }, BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: true,
        });
        await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, ev('live')]]), WAIT);
      });

      it('wakes with the stored form for an offline user, and for session_end', async () => {
        await users('alice');
        const wakes = recorder(state);
        await state.watch('alice');
        await state.deliver('alice', { from: '', online: ev('live'), offline: ev('stored') }, BIG_CAP);
        const token = await login('alice');
        const endEvent = ev('bye', 'session_end');
        expect(await state.endSession('alice', end(token, T0 + 1, { event: endEvent }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
        await vi.waitFor(
          () =>
            expect(wakes).toEqual([
              ['alice', 1, ev('stored')],
              ['alice', 2, endEvent],
            ]),
          WAIT,
        );
      });

      it('every listener of every replica watching the user is woken, in order', async () => {
        await users('alice');
        const other = await replica();
        const mine = recorder(state);
        const mineToo = recorder(state);
        const theirs = recorder(other);
        await state.watch('alice');
        await other.watch('alice');
        await other.deliver('alice', { from: '', online: ev(1), offline: ev(1) }, BIG_CAP);
        await state.deliver('alice', { from: '', online: ev(2), offline: ev(2) }, BIG_CAP);
        const expected: Wake[] = [
          ['alice', 1, ev(1)],
          ['alice', 2, ev(2)],
        ];
        await vi.waitFor(() => {
          expect(mine).toEqual(expected);
          expect(mineToo).toEqual(expected);
          expect(theirs).toEqual(expected);
        }, WAIT);
      });

      it('no wake-ups for unwatched users, after unwatch, or for refused deliveries', async () => {
        await users('alice', 'bob', 'marker');
        const wakes = recorder(state);
        await state.watch('alice');
        await state.watch('marker');
        await state.deliver('bob', { from: '', online: ev('to bob'), offline: ev('to bob') }, BIG_CAP);
        await state.block('alice', 'mallory');
        expect(await state.deliver('alice', { from: 'mallory', online: ev('x'), offline: ev('x') }, BIG_CAP)).toEqual({
          ok: false,
          reason: 'blocked',
        });
        expect(await state.deliver('alice', { from: '', online: ev('signal') }, BIG_CAP)).toEqual({ ok: false, reason: 'offline' });
        await state.deliver('alice', { from: '', online: ev(1), offline: ev(1) }, BIG_CAP);
        // Wake-ups of one store arrive in order: once the marker's arrived, anything before it has too.
        await state.deliver('marker', { from: '', online: ev('m1'), offline: ev('m1') }, BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['marker', 1, ev('m1')]), WAIT);
        expect(wakes).toEqual([
          ['alice', 1, ev(1)],
          ['marker', 1, ev('m1')],
        ]);

        await state.unwatch('alice');
        await state.deliver('alice', { from: '', online: ev(2), offline: ev(2) }, BIG_CAP);
        await state.deliver('marker', { from: '', online: ev('m2'), offline: ev('m2') }, BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['marker', 2, ev('m2')]), WAIT);
        expect(wakes).toEqual([
          ['alice', 1, ev(1)],
          ['marker', 1, ev('m1')],
          ['marker', 2, ev('m2')],
        ]);

        // Watching again resumes wake-ups.
        await state.watch('alice');
        await state.deliver('alice', { from: '', online: ev(3), offline: ev(3) }, BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['alice', 3, ev(3)]), WAIT);
        expect(wakes).toHaveLength(4);
      });

      it('onResync is not called while the subscriber stays connected', async () => {
        await users('alice');
        let resyncs = 0;
        state.onResync(() => resyncs++);
        const wakes = recorder(state);
        await state.watch('alice');
        await state.deliver('alice', { from: '', online: ev(1), offline: ev(1) }, BIG_CAP);
        await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, ev(1)]]), WAIT);
        expect(resyncs).toBe(0);
      });

      it('wake-up bodies keep spaces and unicode intact', async () => {
        await users('alice');
        const wakes = recorder(state);
        await state.watch('alice');
        const body = JSON.stringify({ type: 'message', text: '  two  spaces, ünïcödé 🙂 ' });
        await state.deliver('alice', { from: '', online: body, offline: body }, BIG_CAP);
        await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, body]]), WAIT);
      });
    });
  });
}

// The embedded store: a fresh ioredis-mock (own data) for each test.
contract('ioredis-mock', async () => {
  const state = mockState();
  return {
    state,
    // mockState() gives each store a port of its own; find it to open another replica on the same data.
    replica: async () => {
      const port = ((state as unknown as { redis: { options: { port: number } } }).redis.options.port);
      const redis = new RedisMock({ port });
      return new RedisState(redis, redis.duplicate());
    },
  };
});

// A real redis-server, one for this file, emptied before each test.
describe('real redis-server', () => {
  let server: RedisServer;
  let admin: Redis;

  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url, { maxRetriesPerRequest: 2 });
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  contract('redis-server', async () => {
    await admin.flushall();
    return {
      state: openState(server.url).state,
      replica: async () => openState(server.url).state,
    };
  });

  describe('wake-ups across a lost subscriber connection', () => {
    let state: State;

    beforeEach(async () => {
      await admin.flushall();
      state = openState(server.url).state;
    });

    afterEach(async () => {
      await state.close();
    });

    it('onResync fires after the subscriber reconnects, and watched users wake again', async () => {
      expect(await state.addUser('alice', 'h')).toBe(true);
      let resyncs = 0;
      state.onResync(() => resyncs++);
      const wakes: [string, number, string][] = [];
      state.onWake((user, id, json) => wakes.push([user, id, json]));
      await state.watch('alice');
      await state.deliver('alice', { from: '', online: ev(1), offline: ev(1) }, BIG_CAP);
      await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, ev(1)]]), WAIT);
      expect(resyncs).toBe(0);

      // Drop the subscriber's connection from the server side.
      expect(Number(await admin.client('KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(1);
      await vi.waitFor(() => expect(resyncs).toBe(1), { timeout: 10_000, interval: 20 });

      // The subscription is back: a new event wakes the listener again. (Poll
      // with deliveries until one arrives: the resubscribe may land just after
      // the resync.)
      await vi.waitFor(
        async () => {
          await state.deliver('alice', { from: '', online: ev('again'), offline: ev('again') }, BIG_CAP);
          expect(wakes.length).toBeGreaterThan(1);
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(wakes[1][0]).toBe('alice');
      expect(wakes[1][2]).toBe(ev('again'));
      expect(resyncs).toBe(1);
    });
  });
});
