import { Cluster, Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openState } from '../../state/connect.js';
import type { Cursor } from '../../state/cursor.js';
import type { Delivery, LobbyEvent, Page, PollResult, State } from '../../state/index.js';
import { keys } from '../../state/keys.js';
import { RedisState } from '../../state/redis.js';
import { mockState } from '../support/context.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

/**
 * The state contract: what the State interface (state/index.ts) promises,
 * checked with plain values on every backend the same way. Times are passed
 * in explicitly, so no clock is faked; only key expiry (TTLs) and wake-ups
 * take real time, and those are awaited with bounded polls, never sleeps.
 */

/** A plain client on the store, for writing data the way an older version did. */
interface RawClient {
  sadd(key: string, ...members: string[]): Promise<number>;
  disconnect(): void;
}

/** A fresh, empty store: the State under test and more replicas on the same data. */
interface Backend {
  state: State;
  /** Another State (another replica) on the same store. */
  replica(): Promise<State>;
  /** A plain client on the same store. */
  raw(): Promise<RawClient>;
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

/** A direct message: stored for an offline recipient too, closed with its offline flag. */
function dm(event: string, from = ''): Delivery {
  return { from, event, storable: true };
}

/** Any other personal event (a private-chat signal): refused for an offline recipient, stored as is. */
function signal(event: string, from = ''): Delivery {
  return { from, event, storable: false };
}

/**
 * A direct message as the store keeps it, closed with its offline flag (the
 * literal form is checked by the deliver tests; this spares the others).
 */
function flagged(event: string, offline: boolean): string {
  return `${event.slice(0, -1)},"offline":${offline}}`;
}

function cursor(inbox: number, lobby = 0): Cursor {
  return { inbox, lobby };
}

/**
 * A page as this suite compares it: events, last and gap (the cursor after
 * it is checked by tests of their own).
 */
function view<E>(r: Page<E>) {
  const { events, last, gap } = r;
  return { events, last, gap };
}

/** A poll result as this suite compares it: status, the cursor read after, and the inbox half's events, last and gap. */
function polled(r: PollResult) {
  if (!r.ok) return r;
  const { events, last, gap } = r.inbox;
  return { ok: r.ok, after: r.after, events, last, gap };
}

function ids(events: { id: number }[]): number[] {
  return events.map((e) => e.id);
}

function contract(name: string, makeState: MakeState) {
  describe(`state contract: ${name}`, () => {
    let backend: Backend;
    let state: State;
    const opened: State[] = [];
    const clients: RawClient[] = [];

    /** Another replica on the same store, closed after the test. */
    async function replica(): Promise<State> {
      const r = await backend.replica();
      opened.push(r);
      return r;
    }

    /** A plain client on the same store, closed after the test. */
    async function raw(): Promise<RawClient> {
      const c = await backend.raw();
      clients.push(c);
      return c;
    }

    /** Adds users (with hash `h-<user>`). */
    async function users(...names: string[]): Promise<void> {
      for (const u of names) expect(await state.addUser(u, `h-${u}`)).toBe(true);
    }

    /** Adds a user and opens a session for it (at lobby position `lobby`); returns the token. */
    async function login(user: string, now = T0, token = `${user}:token`, lobby = 0): Promise<string> {
      if (!(await state.userExists(user))) await users(user);
      const r = await state.openSession(user, token, now, '127.0.0.1', lobby);
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
      for (const c of clients.splice(0)) c.disconnect();
      for (const s of opened.splice(0)) await s.close();
      await state.close();
    });

    it('answers ping on a fresh store that holds nothing', async () => {
      expect(await state.ping()).toBe(true);
      expect(await state.listUsers()).toEqual([]);
      expect(await state.online()).toEqual([]);
      expect(await state.endedSince(0)).toEqual([]);
      expect(await state.lobbyHead()).toBe(0);
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
        expect(await state.countPasswordFailure('alice', 1, T0, T0 + 60_000)).toBe('locked');
        expect(await state.loginRecord('alice')).toEqual({ hash: 'h-alice', lockedUntil: T0 + 60_000 });
        expect(await state.setPassword('alice', 'new-hash')).toBe(true);
        expect(await state.loginRecord('alice')).toEqual({ hash: 'new-hash', lockedUntil: 0 });
        const opened = await state.openSession('alice', 'alice:t', T0, '127.0.0.1', 0);
        expect(opened.ok).toBe(true);
      });

      it('countPasswordFailure never creates a user (a removal may race a failed login)', async () => {
        expect(await state.countPasswordFailure('ghost', 1, T0, T0 + 60_000)).toBe('none');
        expect(await state.userExists('ghost')).toBe(false);
        const opened = await state.openSession('ghost', 'ghost:t', T0, '127.0.0.1', 0);
        expect(opened).toEqual({ ok: false, reason: 'invalid_user' });
      });

      it('setPassword restarts the failure count', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1)).toBe('counted');
        expect(await state.setPassword('alice', 'h2')).toBe(true);
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1)).toBe('locked');
      });

      it('removeUser removes the user and everything of theirs; false for an unknown user', async () => {
        await users('alice', 'bob');
        const token = await login('alice');
        await state.markOnline('alice', T0);
        await state.block('alice', 'bob');
        await state.addPrivateRequest('alice', 'bob', T0 + 10_000);
        await state.checkSession('alice', token, T0, check({ set: { p2pHost: '192.0.2.7', p2pPort: '4567' } }));
        expect(await state.deliver('alice', signal(ev(1)), BIG_CAP)).toEqual({ ok: true, id: 1, online: true });

        expect(await state.removeUser('alice')).toBe(true);
        expect(await state.userExists('alice')).toBe(false);
        expect(await state.loginRecord('alice')).toBeNull();
        expect(await state.listUsers()).toEqual(['bob']);
        expect(await state.online()).toEqual([]);
        expect(await state.blocked('alice')).toEqual([]);
        expect(await state.blockedBy('bob')).toEqual([]);
        expect(await state.checkSession('alice', token, T0, check())).toEqual({ ok: false, reason: 'none' });
        expect(await state.peerListener('alice')).toBeNull();
        expect(await state.takePrivateRequest('alice', 'bob', T0)).toBe(false);
        expect(await state.deliver('alice', dm(ev(2)), BIG_CAP)).toEqual({ ok: false, reason: 'invalid_user' });
        expect(await state.removeUser('alice')).toBe(false);
        expect(await state.removeUser('nobody')).toBe(false);
      });

      it("removeUser takes the user out of others' block sets and the reverse index", async () => {
        await users('alice', 'bob', 'carol', 'dave');
        await state.block('alice', 'bob');
        await state.block('alice', 'dave');
        await state.block('carol', 'alice');
        await state.block('dave', 'alice');
        await state.block('carol', 'bob');

        expect(await state.removeUser('alice')).toBe(true);
        expect(await state.blocked('carol')).toEqual(['bob']);
        expect(await state.blocked('dave')).toEqual([]);
        expect(await state.blockedBy('bob')).toEqual(['carol']);
        expect(await state.blockedBy('dave')).toEqual([]);
        expect(await state.blockedBy('alice')).toEqual([]);
        // A user added again under the same name starts with no blocks either way.
        expect(await state.addUser('alice', 'h')).toBe(true);
        expect(await state.blocked('alice')).toEqual([]);
        expect(await state.blockedBy('alice')).toEqual([]);
        expect(await state.deliver('carol', dm(ev(1), 'alice'), BIG_CAP)).toMatchObject({ ok: true });
      });

      it('a removed user added again starts with an empty inbox', async () => {
        await users('alice');
        await state.deliver('alice', dm(ev(1)), BIG_CAP);
        await state.deliver('alice', dm(ev(2)), BIG_CAP);
        expect(await state.removeUser('alice')).toBe(true);
        expect(await state.addUser('alice', 'h')).toBe(true);
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
        expect(await state.deliver('alice', dm(ev(3)), BIG_CAP)).toEqual({ ok: true, id: 1, online: false });
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
        expect(await state.countAddressFailure(a, 1, T0, T0 + 5000, 60_000)).toBe('locked');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 4999, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 5000, 0, 0, 60_000)).toBe('ok');
        expect(await state.guardAddress('10.0.0.5', T0, 0, 0, 60_000)).toBe('ok');
      });

      it('countAddressFailure locks on the limit-th failure, counts nothing while locked, then counts again', async () => {
        const a = '10.0.0.6';
        expect(await state.countAddressFailure(a, 3, T0, T0 + 1000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 3, T0, T0 + 1000, 60_000)).toBe('counted');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('ok');
        expect(await state.countAddressFailure(a, 3, T0, T0 + 1000, 60_000)).toBe('locked');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('address_blocked');
        // While it is locked, a failure neither counts nor locks it again.
        expect(await state.countAddressFailure(a, 3, T0 + 999, T0 + 50_000, 60_000)).toBe('still_locked');
        expect(await state.countAddressFailure(a, 3, T0 + 999, T0 + 50_000, 60_000)).toBe('still_locked');
        expect(await state.countAddressFailure(a, 3, T0 + 999, T0 + 50_000, 60_000)).toBe('still_locked');
        expect(await state.guardAddress(a, T0 + 1000, 0, 0, 60_000)).toBe('ok');
        expect(await state.countAddressFailure(a, 3, T0 + 1000, T0 + 9000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 3, T0 + 1000, T0 + 9000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 3, T0 + 1000, T0 + 9000, 60_000)).toBe('locked');
        expect(await state.guardAddress(a, T0 + 5000, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 9000, 0, 0, 60_000)).toBe('ok');
      });

      it('an address record is forgotten after its ttl', async () => {
        const a = '10.0.0.7';
        expect(await state.countAddressFailure(a, 1, T0, T0 + 3_600_000, 300)).toBe('locked');
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

      it('countPasswordFailure locks the account on the limit-th failure, counts nothing while locked, then counts again', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('counted');
        expect((await state.loginRecord('alice'))?.lockedUntil).toBe(0);
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('locked');
        expect(await state.loginRecord('alice')).toEqual({ hash: 'h-alice', lockedUntil: T0 + 1000 });
        // While it is locked, a failure neither counts nor locks it again.
        for (let k = 0; k < 3; k++) expect(await state.countPasswordFailure('alice', 3, T0 + 999, T0 + 50_000)).toBe('still_locked');
        expect((await state.loginRecord('alice'))?.lockedUntil).toBe(T0 + 1000);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000, T0 + 7000)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000, T0 + 7000)).toBe('counted');
        expect((await state.loginRecord('alice'))?.lockedUntil).toBe(T0 + 1000);
        expect(await state.countPasswordFailure('alice', 3, T0 + 1000, T0 + 7000)).toBe('locked');
        expect((await state.loginRecord('alice'))?.lockedUntil).toBe(T0 + 7000);
      });

      it('a successful login restarts the password failure count', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('counted');
        const token = await login('alice');
        expect((await state.endSession('alice', end(token, T0), BIG_CAP, RETAIN)).ok).toBe(true);
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('counted');
        expect(await state.countPasswordFailure('alice', 3, T0, T0 + 1000)).toBe('locked');
      });
    });

    describe('openSession', () => {
      it('refuses an unknown user', async () => {
        expect(await state.openSession('nobody', 'nobody:t', T0, '127.0.0.1', 0)).toEqual({ ok: false, reason: 'invalid_user' });
        expect(await state.userExists('nobody')).toBe(false);
      });

      it('opens a first session with nothing seen', async () => {
        await users('alice');
        expect(await state.openSession('alice', 'alice:t', T0, '127.0.0.1', 0)).toEqual({
          ok: true,
          seen: 0,
          page: { last: 0, first: 1 },
        });
        expect(await state.checkSession('alice', 'alice:t', T0, check())).toEqual({
          ok: true,
          p2pHost: '',
          p2pPort: '',
          cursor: { inbox: 0, lobby: 0 },
        });
      });

      it('stores the cursor {inbox: seen, lobby: lobbyHead}', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.appendLobby(['bob'], ev('p1', 'presence'), BIG_CAP)).toBe(1);
        expect(await state.appendLobby(['bob'], ev('p2', 'presence'), BIG_CAP)).toBe(2);
        const head = await state.lobbyHead();
        expect(await state.openSession('alice', 'alice:t2', T0 + 2, '127.0.0.1', head)).toEqual({
          ok: true,
          seen: 1,
          page: { last: 1, first: 1 },
        });
        expect(await state.checkSession('alice', 'alice:t2', T0 + 2, check())).toMatchObject({ ok: true, cursor: { inbox: 1, lobby: 2 } });
        expect(polled(await state.poll('alice', 'alice:t2', null, 10))).toEqual({
          ok: true,
          after: { inbox: 1, lobby: 2 },
          events: [],
          last: 1,
          gap: false,
        });
        // The lobby position is the caller's to give: the store takes it as it is.
        const token3 = 'alice:t3';
        expect((await state.endSession('alice', end('alice:t2', T0 + 3), BIG_CAP, RETAIN)).ok).toBe(true);
        expect(await state.openSession('alice', token3, T0 + 4, '127.0.0.1', 41)).toMatchObject({ ok: true, seen: 2 });
        expect(await state.checkSession('alice', token3, T0 + 4, check())).toMatchObject({ ok: true, cursor: { inbox: 2, lobby: 41 } });
      });

      it('refuses a second session while one is live, allows one after it ended', async () => {
        const token = await login('alice');
        expect(await state.openSession('alice', 'alice:other', T0 + 1, '10.0.0.9', 0)).toEqual({ ok: false, reason: 'already_logged_in' });
        expect(await state.checkSession('alice', token, T0 + 1, check())).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', 'alice:other', T0 + 1, check())).toEqual({ ok: false, reason: 'none' });
        expect((await state.endSession('alice', end(token, T0 + 2), BIG_CAP, RETAIN)).ok).toBe(true);
        expect(await state.openSession('alice', 'alice:other', T0 + 3, '10.0.0.9', 0)).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', 'alice:other', T0 + 3, check())).toMatchObject({ ok: true });
        expect(await state.checkSession('alice', token, T0 + 3, check())).toEqual({ ok: false, reason: 'none' });
      });

      it('refuses a locked account while the lock lasts', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 1, T0, T0 + 5000)).toBe('locked');
        expect(await state.openSession('alice', 'alice:t', T0, '127.0.0.1', 0)).toEqual({ ok: false, reason: 'account_blocked' });
        expect(await state.openSession('alice', 'alice:t', T0 + 4999, '127.0.0.1', 0)).toEqual({ ok: false, reason: 'account_blocked' });
        expect(await state.checkSession('alice', 'alice:t', T0, check())).toEqual({ ok: false, reason: 'none' });
        expect(await state.openSession('alice', 'alice:t', T0 + 5000, '127.0.0.1', 0)).toMatchObject({ ok: true });
      });

      it('starts after what the last session saw: its session_end event', async () => {
        const token = await login('alice');
        expect(await state.deliver('alice', signal(ev(1)), BIG_CAP)).toMatchObject({ ok: true, id: 1 });
        expect(await state.deliver('alice', signal(ev(2)), BIG_CAP)).toMatchObject({ ok: true, id: 2 });
        expect(await state.endSession('alice', end(token, T0 + 10), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(await state.deliver('alice', dm(ev(4), 'bob'), BIG_CAP)).toEqual({ ok: true, id: 4, online: false });
        expect(await state.openSession('alice', 'alice:t2', T0 + 20, '127.0.0.1', 0)).toEqual({
          ok: true,
          seen: 3,
          page: { last: 4, first: 1 },
        });
        expect(await state.checkSession('alice', 'alice:t2', T0 + 20, check())).toMatchObject({ ok: true, cursor: { inbox: 3, lobby: 0 } });
        expect(view(await state.read('alice', 3, 10))).toEqual({ events: [{ id: 4, json: flagged(ev(4), true) }], last: 4, gap: false });
      });

      it('reports the first event still kept when the backlog was trimmed', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 10), 2, RETAIN)).toEqual({ ok: true, id: 1 });
        for (let n = 2; n <= 4; n++) {
          expect(await state.deliver('alice', dm(ev(n)), 2)).toEqual({ ok: true, id: n, online: false });
        }
        expect(await state.openSession('alice', 'alice:t2', T0 + 20, '127.0.0.1', 0)).toEqual({
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
          cursor: { inbox: 0, lobby: 0 },
        });
        expect(await state.checkSession('alice', token, T0 + 1, check())).toEqual({
          ok: true,
          p2pHost: '192.0.2.7',
          p2pPort: '4567',
          cursor: { inbox: 0, lobby: 0 },
        });
        expect(await state.checkSession('alice', token, T0 + 2, check({ set: { cursorInbox: '12', cursorLobby: '34' } }))).toEqual({
          ok: true,
          p2pHost: '192.0.2.7',
          p2pPort: '4567',
          cursor: { inbox: 12, lobby: 34 },
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
        await state.deliver('alice', signal(ev(1)), BIG_CAP);
        await state.saveCursor('alice', token, cursor(1, 7));
        expect(await state.endSession('alice', end(token, T0 + 10, { reason: 'timeout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
        expect(await state.checkSession('alice', token, T0 + 20, check({ touch: true, rate: 1, burst: 1 }))).toEqual({
          ok: false,
          reason: 'ended',
          cursor: { inbox: 1, lobby: 7 },
          ended: 'timeout',
        });
        expect(await state.checkSession('alice', 'alice:wrong', T0 + 20, check())).toEqual({ ok: false, reason: 'none' });

        const token2 = await login('alice', T0 + 30, 'alice:t2', 9);
        expect(await state.endSession('alice', end(token2, T0 + 40, { reason: 'logout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(await state.checkSession('alice', token2, T0 + 50, check())).toEqual({
          ok: false,
          reason: 'ended',
          cursor: { inbox: 2, lobby: 9 },
          ended: 'logout',
        });
      });
    });

    describe('peerListener', () => {
      it('is null until a session sets p2pHost and p2pPort through checkSession', async () => {
        await users('alice', 'bob');
        expect(await state.peerListener('alice')).toBeNull();
        const token = await login('alice');
        expect(await state.peerListener('alice')).toBeNull();
        await state.checkSession('alice', token, T0, check({ set: { p2pHost: '192.0.2.7', p2pPort: '4567' } }));
        expect(await state.peerListener('alice')).toEqual({ host: '192.0.2.7', port: '4567' });
        expect(await state.peerListener('bob')).toBeNull();
        expect(await state.peerListener('nobody')).toBeNull();
        // Another replica sees it too.
        const other = await replica();
        expect(await other.peerListener('alice')).toEqual({ host: '192.0.2.7', port: '4567' });
      });

      it('is null with only one of host and port', async () => {
        const token = await login('alice');
        await state.checkSession('alice', token, T0, check({ set: { p2pHost: '192.0.2.7' } }));
        expect(await state.peerListener('alice')).toBeNull();
        const bob = await login('bob');
        await state.checkSession('bob', bob, T0, check({ set: { p2pPort: '4567' } }));
        expect(await state.peerListener('bob')).toBeNull();
      });

      it('is not carried over into the next session', async () => {
        const token = await login('alice');
        await state.checkSession('alice', token, T0, check({ set: { p2pHost: '192.0.2.7', p2pPort: '4567' } }));
        expect((await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).ok).toBe(true);
        await login('alice', T0 + 2, 'alice:t2');
        expect(await state.peerListener('alice')).toBeNull();
      });
    });

    describe('saveCursor', () => {
      it('records both positions, which poll without `after` and checkSession then return', async () => {
        const token = await login('alice');
        for (let n = 1; n <= 3; n++) await state.deliver('alice', signal(ev(n)), BIG_CAP);
        await state.saveCursor('alice', token, cursor(2, 5));
        expect(await state.checkSession('alice', token, T0, check())).toEqual({
          ok: true,
          p2pHost: '',
          p2pPort: '',
          cursor: { inbox: 2, lobby: 5 },
        });
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 5 },
          events: [{ id: 3, json: ev(3) }],
          last: 3,
          gap: false,
        });
        // Another replica reads the same stored cursor.
        const other = await replica();
        expect(await other.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: { inbox: 2, lobby: 5 } });
      });

      it('has no effect with a wrong token or without a session; an ended session takes it (acknowledging its session_end)', async () => {
        await users('bob');
        await state.saveCursor('bob', 'bob:token', cursor(4, 4));
        expect(await state.checkSession('bob', 'bob:token', T0, check())).toEqual({ ok: false, reason: 'none' });

        const token = await login('alice');
        await state.saveCursor('alice', token, cursor(1, 1));
        await state.saveCursor('alice', 'alice:wrong', cursor(9, 9));
        await state.saveCursor('alice', '', cursor(9, 9));
        expect(await state.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: { inbox: 1, lobby: 1 } });

        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        await state.saveCursor('alice', 'alice:wrong', cursor(7, 7));
        await state.saveCursor('alice', token, cursor(1, 2));
        expect(await state.checkSession('alice', token, T0 + 2, check())).toMatchObject({
          ok: false,
          reason: 'ended',
          cursor: { inbox: 1, lobby: 2 },
        });
        expect(await state.poll('alice', token, null, 10)).toEqual({ ok: false, reason: 'ended' });
      });

      it('is not activity: the idle timer keeps running', async () => {
        const token = await login('alice', T0);
        await state.saveCursor('alice', token, cursor(0, 3));
        expect(await state.endSession('alice', end('', T0 + 9000, { reason: 'timeout', idleSince: T0 }), BIG_CAP, RETAIN)).toEqual({
          ok: true,
          id: 1,
        });
      });
    });

    describe('deliver', () => {
      it('refuses an unknown user', async () => {
        expect(await state.deliver('nobody', dm(ev(1)), BIG_CAP)).toEqual({ ok: false, reason: 'invalid_user' });
        expect(await state.deliver('nobody', signal(ev(1)), BIG_CAP)).toEqual({ ok: false, reason: 'invalid_user' });
        expect(await state.userExists('nobody')).toBe(false);
      });

      it('refuses a sender the recipient blocked, and only that sender', async () => {
        await users('alice', 'bob', 'carol');
        await login('alice');
        expect(await state.block('alice', 'bob')).toBe(true);
        expect(await state.deliver('alice', dm(ev(1), 'bob'), BIG_CAP)).toEqual({ ok: false, reason: 'blocked' });
        expect(await state.deliver('alice', signal(ev(1), 'bob'), BIG_CAP)).toEqual({ ok: false, reason: 'blocked' });
        expect(await state.deliver('alice', signal(ev(2), 'carol'), BIG_CAP)).toEqual({ ok: true, id: 1, online: true });
        expect(await state.deliver('alice', signal(ev(3)), BIG_CAP)).toEqual({ ok: true, id: 2, online: true });
        // Blocks are one-way.
        expect(await state.deliver('bob', dm(ev(4), 'alice'), BIG_CAP)).toEqual({ ok: true, id: 1, online: false });
        expect(view(await state.read('alice', 0, 10))).toEqual({
          events: [
            { id: 1, json: ev(2) },
            { id: 2, json: ev(3) },
          ],
          last: 2,
          gap: false,
        });
      });

      it("to an offline user: not storable is refused as 'offline' and stores nothing; storable is stored, closed with \"offline\":true", async () => {
        await users('alice');
        expect(await state.deliver('alice', signal(ev('signal'), 'bob'), BIG_CAP)).toEqual({ ok: false, reason: 'offline' });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
        expect(await state.deliver('alice', dm('{"type":"message","from":"bob","text":"hi"}', 'bob'), BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: false,
        });
        const [stored] = (await state.read('alice', 0, 10)).events;
        expect(stored).toEqual({ id: 1, json: '{"type":"message","from":"bob","text":"hi","offline":true}' });
        expect(JSON.parse(stored.json)).toEqual({ type: 'message', from: 'bob', text: 'hi', offline: true });
      });

      it('to an online user: not storable is stored as is; storable is closed with "offline":false', async () => {
        await login('alice');
        expect(await state.deliver('alice', signal('{"type":"private_request","from":"bob"}', 'bob'), BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: true,
        });
        expect(await state.deliver('alice', dm('{"type":"message","from":"bob","text":"hi"}', 'bob'), BIG_CAP)).toEqual({
          ok: true,
          id: 2,
          online: true,
        });
        const events = (await state.read('alice', 0, 10)).events;
        expect(events).toEqual([
          { id: 1, json: '{"type":"private_request","from":"bob"}' },
          { id: 2, json: '{"type":"message","from":"bob","text":"hi","offline":false}' },
        ]);
        expect(JSON.parse(events[1].json)).toEqual({ type: 'message', from: 'bob', text: 'hi', offline: false });
      });

      it('the offline flag keeps a direct message valid JSON, its body byte for byte', async () => {
        await users('alice');
        const message = { type: 'message', from: 'bob', text: ' two  spaces, "quoted" \\ ünïcödé 🙂 {braces} }', at: T0 };
        const body = JSON.stringify(message);
        expect(await state.deliver('alice', dm(body, 'bob'), BIG_CAP)).toMatchObject({ ok: true, online: false });
        await login('alice');
        expect(await state.deliver('alice', dm(body, 'bob'), BIG_CAP)).toMatchObject({ ok: true, online: true });
        const events = (await state.read('alice', 0, 10)).events;
        expect(events.map((e) => e.json)).toEqual([`${body.slice(0, -1)},"offline":true}`, `${body.slice(0, -1)},"offline":false}`]);
        expect(events.map((e) => JSON.parse(e.json))).toEqual([
          { ...message, offline: true },
          { ...message, offline: false },
        ]);
      });

      it('a user whose session ended is offline', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.deliver('alice', signal(ev('signal')), BIG_CAP)).toEqual({ ok: false, reason: 'offline' });
        expect(await state.deliver('alice', dm(ev('message')), BIG_CAP)).toEqual({ ok: true, id: 2, online: false });
        expect((await state.read('alice', 1, 10)).events).toEqual([{ id: 2, json: flagged(ev('message'), true) }]);
      });

      it('gives consecutive ids across online, offline and session_end events', async () => {
        await users('alice');
        const got: number[] = [];
        const push = async (online: boolean) => {
          const r = await state.deliver('alice', dm(ev('m')), BIG_CAP);
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
          Array.from({ length: 30 }, (_v, n) => (n % 2 === 0 ? state : other).deliver('alice', dm(ev(n)), BIG_CAP)),
        );
        const got = results.map((r) => (r.ok ? r.id : -1)).sort((a, b) => a - b);
        expect(got).toEqual(Array.from({ length: 30 }, (_v, n) => n + 1));
        const page = await state.read('alice', 0, 100);
        expect(page.last).toBe(30);
        expect(ids(page.events)).toEqual(got);
        // Each id names the event that delivery stored.
        const byId = new Map(page.events.map((e) => [e.id, e.json]));
        results.forEach((r, n) => expect(r.ok && byId.get(r.id)).toBe(flagged(ev(n), true)));
      });
    });

    describe('read', () => {
      /** A user who is online, so events are stored exactly as delivered. */
      async function fill(user: string, count: number, cap = BIG_CAP): Promise<void> {
        await login(user);
        for (let n = 1; n <= count; n++) {
          expect(await state.deliver(user, signal(ev(n)), cap)).toMatchObject({ ok: true, id: n });
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
        await login('alice');
        const bodies = [
          JSON.stringify({ type: 'message', text: 'héllo wörld ✓ 日本語 🙂' }),
          JSON.stringify({ type: 'message', text: 'line\nbreak "quoted" \\ back\tslash' }),
          JSON.stringify({ type: 'message', text: ' ' }),
        ];
        for (const body of bodies) await state.deliver('alice', signal(body), BIG_CAP);
        expect((await state.read('alice', 0, 10)).events).toEqual(bodies.map((json, k) => ({ id: k + 1, json })));
      });
    });

    describe('poll', () => {
      async function session(count: number): Promise<string> {
        const token = await login('alice');
        for (let n = 1; n <= count; n++) {
          expect(await state.deliver('alice', signal(ev(n)), BIG_CAP)).toEqual({ ok: true, id: n, online: true });
        }
        return token;
      }

      it('is none without the session token', async () => {
        await users('alice');
        expect(polled(await state.poll('alice', 'alice:t', null, 10))).toEqual({ ok: false, reason: 'none' });
        await session(2);
        expect(polled(await state.poll('alice', 'alice:wrong', cursor(0), 10))).toEqual({ ok: false, reason: 'none' });
        expect(polled(await state.poll('alice', 'alice:wrong', null, 10))).toEqual({ ok: false, reason: 'none' });
      });

      it('with `after` returns the inbox events after it and acknowledges both positions as the stored cursor', async () => {
        const token = await session(4);
        expect(polled(await state.poll('alice', token, cursor(1, 7), 2))).toEqual({
          ok: true,
          after: { inbox: 1, lobby: 7 },
          events: [
            { id: 2, json: ev(2) },
            { id: 3, json: ev(3) },
          ],
          last: 4,
          gap: false,
        });
        expect(await state.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: { inbox: 1, lobby: 7 } });
        // Acknowledging is not reading: the stored cursor does not move past `after`.
        expect(polled(await state.poll('alice', token, null, 10))).toMatchObject({ ok: true, after: { inbox: 1, lobby: 7 } });
        const again = await state.poll('alice', token, null, 10);
        expect(again.ok && ids(again.inbox.events)).toEqual([2, 3, 4]);
        // A later acknowledgement replaces both positions, whichever way they moved.
        expect(polled(await state.poll('alice', token, cursor(3, 2), 10))).toMatchObject({ ok: true, after: { inbox: 3, lobby: 2 } });
        expect(await state.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: { inbox: 3, lobby: 2 } });
      });

      it('without `after` reads from the stored cursor, returns it, and leaves it for the caller to save', async () => {
        const token = await session(5);
        const first = await state.poll('alice', token, null, 2);
        expect(polled(first)).toEqual({
          ok: true,
          after: { inbox: 0, lobby: 0 },
          events: [
            { id: 1, json: ev(1) },
            { id: 2, json: ev(2) },
          ],
          last: 5,
          gap: false,
        });
        expect(await state.checkSession('alice', token, T0, check())).toMatchObject({ ok: true, cursor: { inbox: 0, lobby: 0 } });
        expect(polled(await state.poll('alice', token, null, 2))).toEqual(polled(first));
        await state.saveCursor('alice', token, cursor(first.ok ? first.inbox.cursor : -1, 4));
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 4 },
          events: [
            { id: 3, json: ev(3) },
            { id: 4, json: ev(4) },
            { id: 5, json: ev(5) },
          ],
          last: 5,
          gap: false,
        });
        await state.saveCursor('alice', token, cursor(5, 4));
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({ ok: true, after: { inbox: 5, lobby: 4 }, events: [], last: 5, gap: false });
        await state.deliver('alice', signal(ev(6)), BIG_CAP);
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 5, lobby: 4 },
          events: [{ id: 6, json: ev(6) }],
          last: 6,
          gap: false,
        });
      });

      it('starts a new session at the cursor openSession reported', async () => {
        const token = await session(2);
        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        await state.deliver('alice', dm(ev(4)), BIG_CAP);
        const token2 = await login('alice', T0 + 2, 'alice:t2', 6);
        expect(polled(await state.poll('alice', token2, null, 10))).toEqual({
          ok: true,
          after: { inbox: 3, lobby: 6 },
          events: [{ id: 4, json: flagged(ev(4), true) }],
          last: 4,
          gap: false,
        });
      });

      it("the inbox half's cursor is the last event it returned, else the position it read after", async () => {
        const token = await session(4);
        const inboxCursor = async (after: Cursor | null, limit: number) => {
          const r = await state.poll('alice', token, after, limit);
          return r.ok ? r.inbox.cursor : r.reason;
        };
        expect(await inboxCursor(cursor(0), 3)).toBe(3);
        expect(await inboxCursor(cursor(3), 10)).toBe(4);
        expect(await inboxCursor(cursor(4), 10)).toBe(4);
        expect(await inboxCursor(cursor(1), 2)).toBe(3);
        expect(await inboxCursor(cursor(2), 0)).toBe(2);
        // One beyond the newest event snaps back to the newest id.
        expect(await inboxCursor(cursor(99), 10)).toBe(4);
        expect(await inboxCursor(null, 10)).toBe(4);
      });

      it('reports a gap when the events after the cursor were trimmed', async () => {
        const token = await login('alice');
        for (let n = 1; n <= 5; n++) await state.deliver('alice', signal(ev(n)), 2);
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 0, lobby: 0 },
          events: [
            { id: 4, json: ev(4) },
            { id: 5, json: ev(5) },
          ],
          last: 5,
          gap: true,
        });
        expect(polled(await state.poll('alice', token, cursor(5), 10))).toEqual({ ok: true, after: cursor(5), events: [], last: 5, gap: false });
      });

      it('an ended session reads up to its session_end event, then answers ended', async () => {
        const token = await session(2);
        const endEvent = ev('bye', 'session_end');
        expect(await state.endSession('alice', end(token, T0 + 1, { event: endEvent }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(polled(await state.poll('alice', token, cursor(1, 5), 10))).toEqual({
          ok: true,
          after: { inbox: 1, lobby: 5 },
          events: [
            { id: 2, json: ev(2) },
            { id: 3, json: endEvent },
          ],
          last: 3,
          gap: false,
        });
        expect(polled(await state.poll('alice', token, cursor(3, 5), 10))).toEqual({ ok: false, reason: 'ended' });
        expect(polled(await state.poll('alice', token, cursor(99), 10))).toEqual({ ok: false, reason: 'ended' });
        expect(polled(await state.poll('alice', 'alice:wrong', cursor(1), 10))).toEqual({ ok: false, reason: 'none' });
      });

      it('an ended session polled from its stored cursor reads up to its session_end event; once acknowledged, answers ended', async () => {
        const token = await session(2);
        const endEvent = ev('bye', 'session_end');
        expect(await state.endSession('alice', end(token, T0 + 1, { event: endEvent }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(polled(await state.poll('alice', token, null, 2))).toEqual({
          ok: true,
          after: { inbox: 0, lobby: 0 },
          events: [
            { id: 1, json: ev(1) },
            { id: 2, json: ev(2) },
          ],
          last: 3,
          gap: false,
        });
        expect(polled(await state.poll('alice', token, cursor(2), 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 0 },
          events: [{ id: 3, json: endEvent }],
          last: 3,
          gap: false,
        });
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 0 },
          events: [{ id: 3, json: endEvent }],
          last: 3,
          gap: false,
        });
        expect(polled(await state.poll('alice', token, cursor(3), 10))).toEqual({ ok: false, reason: 'ended' });
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({ ok: false, reason: 'ended' });
        expect(polled(await state.poll('alice', 'alice:wrong', null, 10))).toEqual({ ok: false, reason: 'none' });
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
        for (let n = 1; n <= 3; n++) await state.deliver('alice', signal(ev(n)), BIG_CAP);
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
        expect(polled(await state.poll('alice', token, cursor(0), 10))).toEqual({ ok: false, reason: 'none' });
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({ ok: false, reason: 'none' });
        // The user and their inbox stay.
        expect(view(await state.read('alice', 0, 10))).toMatchObject({ last: 1 });
        expect(await state.openSession('alice', 'alice:t2', T0 + 4, '127.0.0.1', 0)).toMatchObject({ ok: true, seen: 1 });
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

      it('onlineAmong keeps the given users who are online, in the order given', async () => {
        expect(await state.onlineAmong([])).toEqual([]);
        expect(await state.onlineAmong(['alice', 'bob'])).toEqual([]);
        await state.markOnline('alice', T0);
        await state.markOnline('bob', T0);
        await state.markOnline('carol', T0);
        expect(await state.onlineAmong(['dave', 'carol', 'erin', 'alice'])).toEqual(['carol', 'alice']);
        expect(await state.onlineAmong(['bob'])).toEqual(['bob']);
        expect(await state.onlineAmong([])).toEqual([]);
        await state.markOffline('carol', T0 + 1);
        expect(await state.onlineAmong(['dave', 'carol', 'erin', 'alice'])).toEqual(['alice']);
        // A user whose last session ended is not online, however recently.
        expect(await state.endedSince(T0)).toEqual(['carol']);
        expect(await state.onlineAmong(['carol'])).toEqual([]);
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
        expect(await state.deliver('alice', dm(ev(1), 'bob'), BIG_CAP)).toEqual({ ok: false, reason: 'blocked' });
        await state.unblock('alice', 'bob');
        expect(await state.deliver('alice', dm(ev(2), 'bob'), BIG_CAP)).toEqual({ ok: true, id: 1, online: false });
      });

      it('blockedBy of a user nobody blocked is empty', async () => {
        await users('alice', 'bob');
        expect(await state.blockedBy('alice')).toEqual([]);
        expect(await state.blockedBy('nobody')).toEqual([]);
        await state.block('alice', 'bob');
        expect(await state.blockedBy('alice')).toEqual([]);
      });

      it('block / unblock keep blockedBy (the reverse block index) in step', async () => {
        expect(await state.block('alice', 'bob')).toBe(true);
        expect(await state.block('dave', 'bob')).toBe(true);
        expect(await state.block('carol', 'alice')).toBe(true);
        expect((await state.blockedBy('bob')).sort()).toEqual(['alice', 'dave']);
        expect(await state.blockedBy('alice')).toEqual(['carol']);
        expect(await state.blockedBy('carol')).toEqual([]);
        // A repeated block adds nothing.
        expect(await state.block('alice', 'bob')).toBe(false);
        expect((await state.blockedBy('bob')).sort()).toEqual(['alice', 'dave']);
        expect(await state.unblock('alice', 'bob')).toBe(true);
        expect(await state.blockedBy('bob')).toEqual(['dave']);
        expect(await state.unblock('alice', 'bob')).toBe(false);
        expect(await state.blockedBy('bob')).toEqual(['dave']);
        expect(await state.unblock('dave', 'bob')).toBe(true);
        expect(await state.blockedBy('bob')).toEqual([]);
        expect(await state.blockedBy('alice')).toEqual(['carol']);
      });

      it('blocks made on one replica are in the reverse index another replica reads', async () => {
        const other = await replica();
        await state.block('alice', 'bob');
        await other.block('carol', 'bob');
        expect((await other.blockedBy('bob')).sort()).toEqual(['alice', 'carol']);
        expect((await state.blockedBy('bob')).sort()).toEqual(['alice', 'carol']);
        await other.unblock('alice', 'bob');
        expect(await state.blockedBy('bob')).toEqual(['carol']);
        expect(await state.blocked('alice')).toEqual([]);
      });

      it('concurrent blocks and unblocks of one target (also from another replica) leave both sets agreeing', async () => {
        const other = await replica();
        const blockers = Array.from({ length: 12 }, (_v, n) => `u${n}`);
        await Promise.all(blockers.map((u, n) => (n % 2 === 0 ? state : other).block(u, 'bob')));
        await Promise.all(blockers.filter((_u, n) => n % 3 === 0).map((u, n) => (n % 2 === 0 ? other : state).unblock(u, 'bob')));
        const kept = blockers.filter((_u, n) => n % 3 !== 0);
        expect((await state.blockedBy('bob')).sort()).toEqual([...kept].sort());
        for (const u of blockers) expect(await state.blocked(u)).toEqual(kept.includes(u) ? ['bob'] : []);
      });
    });

    describe('migrate', () => {
      /** Blocks as a version without the reverse index wrote them: only in the blocker's set. */
      async function oldBlocks(...pairs: [string, string][]): Promise<void> {
        const client = await raw();
        for (const [user, target] of pairs) expect(await client.sadd(`b:{${user}}`, target)).toBe(1);
      }

      it('builds the reverse index from block sets written without it', async () => {
        await users('alice', 'bob', 'carol', 'dave');
        await oldBlocks(['alice', 'bob'], ['carol', 'bob'], ['bob', 'alice'], ['alice', 'dave']);
        expect(await state.blocked('carol')).toEqual(['bob']);
        expect(await state.blockedBy('bob')).toEqual([]);
        await state.migrate();
        expect((await state.blockedBy('bob')).sort()).toEqual(['alice', 'carol']);
        expect(await state.blockedBy('alice')).toEqual(['bob']);
        expect(await state.blockedBy('dave')).toEqual(['alice']);
        expect(await state.blockedBy('carol')).toEqual([]);
        // The blockers' own sets are left as they were.
        expect((await state.blocked('alice')).sort()).toEqual(['bob', 'dave']);
        expect(await state.blocked('bob')).toEqual(['alice']);
        expect(await state.blocked('carol')).toEqual(['bob']);
        // Unblocking an old block now takes it out of both.
        expect(await state.unblock('carol', 'bob')).toBe(true);
        expect(await state.blockedBy('bob')).toEqual(['alice']);
      });

      it('is idempotent, also when several replicas run it at once', async () => {
        await users('alice', 'bob', 'carol');
        await oldBlocks(['alice', 'bob'], ['carol', 'bob']);
        const others = [await replica(), await replica()];
        await Promise.all([state.migrate(), ...others.map((o) => o.migrate())]);
        expect((await state.blockedBy('bob')).sort()).toEqual(['alice', 'carol']);
        await state.migrate();
        await others[0].migrate();
        expect((await state.blockedBy('bob')).sort()).toEqual(['alice', 'carol']);
        expect(await state.blockedBy('alice')).toEqual([]);
        expect(await state.blocked('alice')).toEqual(['bob']);
      });

      it('is a no-op once done', async () => {
        await users('alice', 'bob', 'carol');
        await oldBlocks(['alice', 'bob']);
        await state.migrate();
        expect(await state.blockedBy('bob')).toEqual(['alice']);
        // Written behind the index's back after the migration: not picked up by another run.
        await oldBlocks(['carol', 'bob']);
        await state.migrate();
        expect(await state.blockedBy('bob')).toEqual(['alice']);
        const other = await replica();
        await other.migrate();
        expect(await state.blockedBy('bob')).toEqual(['alice']);
      });

      it('on a store with no blocks changes nothing, and blocks made afterwards are indexed', async () => {
        await users('alice', 'bob');
        await state.migrate();
        expect(await state.blockedBy('alice')).toEqual([]);
        expect(await state.blockedBy('bob')).toEqual([]);
        expect(await state.listUsers()).toEqual(['alice', 'bob']);
        expect(await state.block('alice', 'bob')).toBe(true);
        expect(await state.blockedBy('bob')).toEqual(['alice']);
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

    describe('lobby', () => {
      /** Presence event `n` of user `u<n>`, skipping the subject (and whom it blocked). */
      async function fillLobby(count: number, cap = BIG_CAP): Promise<void> {
        for (let n = 1; n <= count; n++) expect(await state.appendLobby([`u${n}`], ev(n, 'presence'), cap)).toBe(n);
      }

      function lobbyEvent(n: number): LobbyEvent {
        return { id: n, skip: [`u${n}`], json: ev(n, 'presence') };
      }

      it('an empty lobby has head 0 and reads as empty', async () => {
        expect(await state.lobbyHead()).toBe(0);
        expect(await state.readLobby(0, 10)).toEqual({ events: [], last: 0, cursor: 0, gap: false });
        expect(await state.readLobby(5, 10)).toEqual({ events: [], last: 0, cursor: 0, gap: false });
      });

      it('appendLobby returns consecutive ids; lobbyHead is the newest', async () => {
        expect(await state.appendLobby(['alice'], ev(1, 'presence'), BIG_CAP)).toBe(1);
        expect(await state.lobbyHead()).toBe(1);
        expect(await state.appendLobby(['bob', 'carol'], ev(2, 'broadcast'), BIG_CAP)).toBe(2);
        expect(await state.appendLobby(['alice'], ev(3, 'presence'), BIG_CAP)).toBe(3);
        expect(await state.lobbyHead()).toBe(3);
        // The lobby is apart from every inbox.
        await users('alice');
        expect((await state.read('alice', 0, 10)).last).toBe(0);
        expect(await state.deliver('alice', dm(ev('m')), BIG_CAP)).toMatchObject({ ok: true, id: 1 });
        expect(await state.lobbyHead()).toBe(3);
      });

      it('concurrent appends (also from another replica) get distinct consecutive ids', async () => {
        const other = await replica();
        const got = await Promise.all(
          Array.from({ length: 30 }, (_v, n) => (n % 2 === 0 ? state : other).appendLobby([`u${n}`], ev(n, 'presence'), BIG_CAP)),
        );
        expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_v, n) => n + 1));
        expect(await other.lobbyHead()).toBe(30);
        const page = await state.readLobby(0, 100);
        const byId = new Map(page.events.map((e) => [e.id, e]));
        got.forEach((id, n) => expect(byId.get(id)).toEqual({ id, skip: [`u${n}`], json: ev(n, 'presence') }));
      });

      it('readLobby returns the events after a position, in order, with their skip lists and JSON byte for byte', async () => {
        const entries: [string[], string][] = [
          [['alice'], JSON.stringify({ type: 'presence', user: 'alice', state: 'online' })],
          [['bob', 'carol', 'dave.e', 'x_y-z'], JSON.stringify({ type: 'broadcast', from: 'bob', text: 'héllo wörld ✓ 日本語 🙂' })],
          [['carol'], JSON.stringify({ type: 'broadcast', from: 'carol', text: 'line\nbreak "quoted" \\ back\tslash, a,b c' })],
          [['dave'], JSON.stringify({ type: 'broadcast', from: 'dave', text: '  leading and trailing  ' })],
        ];
        for (const [k, [skip, json]] of entries.entries()) expect(await state.appendLobby(skip, json, BIG_CAP)).toBe(k + 1);
        const all = entries.map(([skip, json], k) => ({ id: k + 1, skip, json }));
        expect(await state.readLobby(0, 10)).toEqual({ events: all, last: 4, cursor: 4, gap: false });
        expect(await state.readLobby(1, 10)).toEqual({ events: all.slice(1), last: 4, cursor: 4, gap: false });
        expect(await state.readLobby(3, 10)).toEqual({ events: all.slice(3), last: 4, cursor: 4, gap: false });
        // Another replica reads the same.
        const other = await replica();
        expect(await other.readLobby(0, 10)).toEqual({ events: all, last: 4, cursor: 4, gap: false });
      });

      it('an event with an empty skip list reads back, and wakes, with an empty skip list', async () => {
        const wakes: LobbyEvent[] = [];
        state.onLobby((event) => wakes.push(event));
        await state.watchLobby();
        expect(await state.appendLobby([], ev('all', 'broadcast'), BIG_CAP)).toBe(1);
        const expected = [{ id: 1, skip: [], json: ev('all', 'broadcast') }];
        expect((await state.readLobby(0, 10)).events).toEqual(expected);
        await vi.waitFor(() => expect(wakes).toEqual(expected), WAIT);
      });

      it('readLobby returns at most `limit` events, the oldest first; its cursor is the last returned, else the position read after', async () => {
        await fillLobby(5);
        expect(await state.readLobby(0, 2)).toEqual({ events: [lobbyEvent(1), lobbyEvent(2)], last: 5, cursor: 2, gap: false });
        expect(await state.readLobby(3, 1)).toEqual({ events: [lobbyEvent(4)], last: 5, cursor: 4, gap: false });
        expect(await state.readLobby(1, 0)).toEqual({ events: [], last: 5, cursor: 1, gap: false });
        expect(await state.readLobby(5, 10)).toEqual({ events: [], last: 5, cursor: 5, gap: false });
        // One beyond the newest event snaps back to the newest id.
        expect(await state.readLobby(99, 10)).toEqual({ events: [], last: 5, cursor: 5, gap: false });
      });

      it('keeps only `cap` events and reports the gap after a trimmed position', async () => {
        await fillLobby(6, 3);
        expect(await state.lobbyHead()).toBe(6);
        expect(await state.readLobby(0, 10)).toEqual({ events: [4, 5, 6].map(lobbyEvent), last: 6, cursor: 6, gap: true });
        expect(await state.readLobby(2, 10)).toMatchObject({ last: 6, gap: true });
        expect(await state.readLobby(2, 1)).toEqual({ events: [lobbyEvent(4)], last: 6, cursor: 4, gap: true });
        expect(await state.readLobby(3, 10)).toEqual({ events: [4, 5, 6].map(lobbyEvent), last: 6, cursor: 6, gap: false });
        expect(await state.readLobby(6, 10)).toEqual({ events: [], last: 6, cursor: 6, gap: false });
        // The ids go on after a trim.
        expect(await state.appendLobby(['u7'], ev(7, 'presence'), 3)).toBe(7);
        expect(ids((await state.readLobby(0, 10)).events)).toEqual([5, 6, 7]);
      });
    });

    describe('lobby wake-ups', () => {
      type InboxWake = [string, number, string];

      function lobbyRecorder(s: State): LobbyEvent[] {
        const wakes: LobbyEvent[] = [];
        s.onLobby((event) => wakes.push(event));
        return wakes;
      }

      function inboxRecorder(s: State): InboxWake[] {
        const wakes: InboxWake[] = [];
        s.onWake((user, id, json) => wakes.push([user, id, json]));
        return wakes;
      }

      it('after watchLobby, every lobby listener of every replica is woken for each append, in order, with the skip list', async () => {
        const other = await replica();
        const mine = lobbyRecorder(state);
        const mineToo = lobbyRecorder(state);
        const theirs = lobbyRecorder(other);
        await state.watchLobby();
        await other.watchLobby();
        const broadcast = JSON.stringify({ type: 'broadcast', from: 'bob', text: '  two  spaces, ünïcödé 🙂 ' });
        expect(await other.appendLobby(['alice'], ev(1, 'presence'), BIG_CAP)).toBe(1);
        expect(await state.appendLobby(['bob', 'carol', 'dave'], broadcast, BIG_CAP)).toBe(2);
        expect(await other.appendLobby(['erin'], ev(3, 'presence'), BIG_CAP)).toBe(3);
        const expected: LobbyEvent[] = [
          { id: 1, skip: ['alice'], json: ev(1, 'presence') },
          { id: 2, skip: ['bob', 'carol', 'dave'], json: broadcast },
          { id: 3, skip: ['erin'], json: ev(3, 'presence') },
        ];
        await vi.waitFor(() => {
          expect(mine).toEqual(expected);
          expect(mineToo).toEqual(expected);
          expect(theirs).toEqual(expected);
        }, WAIT);
        // A wake-up carries what readLobby returns.
        expect((await state.readLobby(0, 10)).events).toEqual(expected);
      });

      it('no lobby wake-up before watchLobby, and lobby appends never wake inbox listeners', async () => {
        await users('marker');
        const lobby = lobbyRecorder(state);
        const inbox = inboxRecorder(state);
        await state.watch('marker');
        await state.watch('alice');
        expect(await state.appendLobby(['alice'], ev(1, 'presence'), BIG_CAP)).toBe(1);
        // Wake-ups of one store arrive in order: once the marker's arrived, anything before it has too.
        await state.deliver('marker', dm(ev('m1')), BIG_CAP);
        await vi.waitFor(() => expect(inbox.at(-1)).toEqual(['marker', 1, flagged(ev('m1'), true)]), WAIT);
        expect(lobby).toEqual([]);

        await state.watchLobby();
        expect(await state.appendLobby(['alice'], ev(2, 'presence'), BIG_CAP)).toBe(2);
        await state.deliver('marker', dm(ev('m2')), BIG_CAP);
        await vi.waitFor(() => expect(inbox.at(-1)).toEqual(['marker', 2, flagged(ev('m2'), true)]), WAIT);
        await vi.waitFor(() => expect(lobby).toEqual([{ id: 2, skip: ['alice'], json: ev(2, 'presence') }]), WAIT);
        expect(inbox).toEqual([
          ['marker', 1, flagged(ev('m1'), true)],
          ['marker', 2, flagged(ev('m2'), true)],
        ]);
      });

      it('inbox deliveries never wake lobby listeners', async () => {
        await users('alice');
        const lobby = lobbyRecorder(state);
        const inbox = inboxRecorder(state);
        await state.watchLobby();
        await state.watch('alice');
        await state.deliver('alice', dm(ev(1)), BIG_CAP);
        await state.appendLobby(['bob'], ev('marker', 'presence'), BIG_CAP);
        await vi.waitFor(() => expect(lobby).toEqual([{ id: 1, skip: ['bob'], json: ev('marker', 'presence') }]), WAIT);
        expect(inbox).toEqual([['alice', 1, flagged(ev(1), true)]]);
      });
    });

    describe('wake-ups', () => {
      type Wake = [string, number, string];

      function recorder(s: State): Wake[] {
        const wakes: Wake[] = [];
        s.onWake((user, id, json) => wakes.push([user, id, json]));
        return wakes;
      }

      it('a watched user is woken with (user, id, json) when an event is appended, json as stored', async () => {
        await users('alice', 'bob');
        const wakes = recorder(state);
        await state.watch('alice');
        await login('alice');
        expect(await state.deliver('alice', dm(ev('live'), 'bob'), BIG_CAP)).toEqual({ ok: true, id: 1, online: true });
        await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, flagged(ev('live'), false)]]), WAIT);
      });

      it('wakes with the stored form for an offline user (flagged offline), and for session_end', async () => {
        await users('alice');
        const wakes = recorder(state);
        await state.watch('alice');
        await state.deliver('alice', dm(ev('stored')), BIG_CAP);
        const token = await login('alice');
        const endEvent = ev('bye', 'session_end');
        expect(await state.endSession('alice', end(token, T0 + 1, { event: endEvent }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
        await vi.waitFor(
          () =>
            expect(wakes).toEqual([
              ['alice', 1, flagged(ev('stored'), true)],
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
        await other.deliver('alice', dm(ev(1)), BIG_CAP);
        await state.deliver('alice', dm(ev(2)), BIG_CAP);
        const expected: Wake[] = [
          ['alice', 1, flagged(ev(1), true)],
          ['alice', 2, flagged(ev(2), true)],
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
        await state.deliver('bob', dm(ev('to bob')), BIG_CAP);
        await state.block('alice', 'mallory');
        expect(await state.deliver('alice', dm(ev('x'), 'mallory'), BIG_CAP)).toEqual({
          ok: false,
          reason: 'blocked',
        });
        expect(await state.deliver('alice', signal(ev('signal')), BIG_CAP)).toEqual({ ok: false, reason: 'offline' });
        await state.deliver('alice', dm(ev(1)), BIG_CAP);
        // Wake-ups of one store arrive in order: once the marker's arrived, anything before it has too.
        await state.deliver('marker', dm(ev('m1')), BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['marker', 1, flagged(ev('m1'), true)]), WAIT);
        expect(wakes).toEqual([
          ['alice', 1, flagged(ev(1), true)],
          ['marker', 1, flagged(ev('m1'), true)],
        ]);

        await state.unwatch('alice');
        await state.deliver('alice', dm(ev(2)), BIG_CAP);
        await state.deliver('marker', dm(ev('m2')), BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['marker', 2, flagged(ev('m2'), true)]), WAIT);
        expect(wakes).toEqual([
          ['alice', 1, flagged(ev(1), true)],
          ['marker', 1, flagged(ev('m1'), true)],
          ['marker', 2, flagged(ev('m2'), true)],
        ]);

        // Watching again resumes wake-ups.
        await state.watch('alice');
        await state.deliver('alice', dm(ev(3)), BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['alice', 3, flagged(ev(3), true)]), WAIT);
        expect(wakes).toHaveLength(4);
      });

      it('onResync is not called while the subscriber stays connected', async () => {
        await users('alice');
        let resyncs = 0;
        state.onResync(() => resyncs++);
        const wakes = recorder(state);
        await state.watch('alice');
        await state.deliver('alice', dm(ev(1)), BIG_CAP);
        await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, flagged(ev(1), true)]]), WAIT);
        expect(resyncs).toBe(0);
      });

      it('wake-up bodies keep spaces and unicode intact', async () => {
        await login('alice');
        const wakes = recorder(state);
        await state.watch('alice');
        const body = JSON.stringify({ type: 'message', text: '  two  spaces, ünïcödé 🙂 ' });
        await state.deliver('alice', signal(body), BIG_CAP);
        await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, body]]), WAIT);
      });
    });
  });
}

// The embedded store: a fresh ioredis-mock (own data) for each test.
contract('ioredis-mock', async () => {
  const state = mockState();
  // mockState() gives each store a port of its own; the mock shares data between clients of one port.
  const port = (state as unknown as { redis: { options: { port: number } } }).redis.options.port;
  return {
    state,
    replica: async () => {
      const redis = new RedisMock({ port });
      return new RedisState(redis, redis.duplicate());
    },
    raw: async () => new RedisMock({ port }),
  };
});

/** A store whose subscriber connections can be dropped from the server side. */
interface Droppable {
  /** Empties the store. */
  flush(): Promise<void>;
  open(): State;
  /** Kills the store's pub/sub client connections; how many it killed. */
  killSubscribers(): Promise<number>;
}

/**
 * Wake-ups across a lost subscriber connection (a real store only: the mock
 * has no connections to lose).
 */
function resubscribe(store: () => Droppable) {
  describe('wake-ups across a lost subscriber connection', () => {
    let state: State;

    beforeEach(async () => {
      await store().flush();
      state = store().open();
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
      await state.deliver('alice', dm(ev(1)), BIG_CAP);
      await vi.waitFor(() => expect(wakes).toEqual([['alice', 1, flagged(ev(1), true)]]), WAIT);
      expect(resyncs).toBe(0);

      // Drop the subscriber's connection from the server side.
      expect(await store().killSubscribers()).toBeGreaterThanOrEqual(1);
      await vi.waitFor(() => expect(resyncs).toBe(1), { timeout: 10_000, interval: 20 });

      // The subscription is back: a new event wakes the listener again. (Poll
      // with deliveries until one arrives: the resubscribe may land just after
      // the resync.)
      await vi.waitFor(
        async () => {
          await state.deliver('alice', dm(ev('again')), BIG_CAP);
          expect(wakes.length).toBeGreaterThan(1);
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(wakes[1][0]).toBe('alice');
      expect(wakes[1][2]).toBe(flagged(ev('again'), true));
      expect(resyncs).toBe(1);
    });

    it('the lobby subscription comes back after the subscriber reconnects', async () => {
      let resyncs = 0;
      state.onResync(() => resyncs++);
      const lobby: LobbyEvent[] = [];
      state.onLobby((event) => lobby.push(event));
      await state.watchLobby();
      expect(await state.appendLobby(['alice'], ev(1, 'presence'), BIG_CAP)).toBe(1);
      await vi.waitFor(() => expect(lobby).toEqual([{ id: 1, skip: ['alice'], json: ev(1, 'presence') }]), WAIT);

      expect(await store().killSubscribers()).toBeGreaterThanOrEqual(1);
      await vi.waitFor(() => expect(resyncs).toBe(1), { timeout: 10_000, interval: 20 });
      await vi.waitFor(
        async () => {
          await state.appendLobby(['bob'], ev('again', 'presence'), BIG_CAP);
          expect(lobby.length).toBeGreaterThan(1);
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(lobby[1]).toMatchObject({ skip: ['bob'], json: ev('again', 'presence') });
      expect(lobby[1].id).toBeGreaterThan(1);
    });
  });
}

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
      raw: async () => new Redis(server.url, { maxRetriesPerRequest: 2 }),
    };
  });

  resubscribe(() => ({
    flush: async () => void (await admin.flushall()),
    open: () => openState(server.url).state,
    killSubscribers: async () => Number(await admin.client('KILL', 'TYPE', 'pubsub')),
  }));
});

// A three-node Redis Cluster (every node a master), one for this file,
// emptied before each test; the state opens it through the seed-list URL.
describe('redis cluster', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  contract('redis cluster', async () => {
    await cluster.flush();
    return {
      state: openState(cluster.url).state,
      replica: async () => openState(cluster.url).state,
      raw: async () => new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 2 } }),
    };
  });

  resubscribe(() => ({
    flush: () => cluster.flush(),
    open: () => openState(cluster.url).state,
    // Each node the state subscribed on has a sharded subscriber connection of its own.
    killSubscribers: async () => (await Promise.all(cluster.nodes.map((n) => n.client('KILL', 'TYPE', 'pubsub')))).reduce((a: number, b) => a + Number(b), 0),
  }));

  describe('slots and sharded pub/sub', () => {
    /** How many hash slots the keys fall in, as the cluster computes them. */
    async function slots(...names: string[]): Promise<number> {
      return new Set(await Promise.all(names.map((k) => cluster.nodes[0].cluster('KEYSLOT', k)))).size;
    }

    it("a user's keys and wake channel share one slot, the lobby's theirs, the global sets {im}'s: three slots", async () => {
      const user = (u: string) => [keys.user(u), keys.session(u), keys.inbox(u), keys.blocks(u), keys.blockedBy(u), keys.privateRequests(u), keys.wake(u)];
      expect(await slots(...user('alice'))).toBe(1);
      expect(await slots(keys.lobbyMeta, keys.lobby, keys.lobbyWake)).toBe(1);
      expect(await slots(keys.users, keys.online, keys.lastSeen, keys.schema)).toBe(1);
      expect(await slots(keys.lobby, keys.user('alice'), keys.users)).toBe(3);
    });

    it('wake-ups go by sharded pub/sub: subscribed on the node of the channel\'s slot, SPUBLISH from the scripts, never PUBLISH', async () => {
      await cluster.flush();
      await Promise.all(cluster.nodes.map((n) => n.config('RESETSTAT')));
      const state = openState(cluster.url).state;
      try {
        const wakes: number[] = [];
        const lobby: number[] = [];
        state.onWake((_user, id) => wakes.push(id));
        state.onLobby((event) => lobby.push(event.id));
        await state.addUser('alice', 'h');
        await state.watch('alice');
        await state.watchLobby();
        const subscribers = async (channel: string) =>
          Promise.all(cluster.nodes.map(async (n) => Number(((await n.pubsub('SHARDNUMSUB', channel)) as [string, number])[1])));
        /** 1 on the node serving the key's slot, 0 on the others. */
        const onlyOn = async (key: string) => {
          const owner = await cluster.nodeOf(key);
          return cluster.nodes.map((_n, k) => (k === owner ? 1 : 0));
        };
        await state.deliver('alice', dm(ev(1)), BIG_CAP);
        await state.appendLobby([], ev(2, 'presence'), BIG_CAP);
        await vi.waitFor(() => {
          expect(wakes).toEqual([1]);
          expect(lobby).toEqual([1]);
        }, WAIT);
        // One subscriber per channel, on the node that holds the channel's keys.
        expect(await subscribers(keys.wake('alice'))).toEqual(await onlyOn(keys.user('alice')));
        expect(await subscribers(keys.lobbyWake)).toEqual(await onlyOn(keys.lobby));
        const calls = async (command: string) =>
          (await Promise.all(cluster.nodes.map((n) => n.info('commandstats')))).reduce(
            (sum, info) => sum + Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0),
            0,
          );
        expect(await calls('spublish')).toBe(2);
        expect(await calls('publish')).toBe(0);
      } finally {
        await state.close();
      }
    });
  });
});
