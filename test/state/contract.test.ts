import { Cluster, Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openState } from '../../state/connect.js';
import { Cursor } from '../../state/cursor.js';
import type { Delivery, LobbyEvent, NewEvent, Page, PollResult, State, StoredEvent } from '../../state/index.js';
import { keys } from '../../state/keys.js';
import { RedisState } from '../../state/redis.js';
import { mockState } from '../support/context.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { fingerprint } from '../support/fingerprints.js';

/**
 * The state contract: what the State interface (state/index.ts) promises,
 * checked with plain values on every backend the same way. Times are passed
 * in explicitly, so no clock is faked; only key expiry (TTLs) and wake-ups
 * take real time, and those are awaited with bounded polls, never sleeps.
 */

/** A plain client on the store, for writing data the way an older version did. */
interface RawClient {
  sadd(key: string, ...members: string[]): Promise<number>;
  hset(key: string, field: string, value: string): Promise<number>;
  rpush(key: string, ...values: string[]): Promise<number>;
  hincrby(key: string, field: string, increment: number): Promise<number>;
  hgetall(key: string): Promise<Record<string, string>>;
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
const FP = fingerprint(1);
const FP2 = fingerprint(2);

/** A time for event `n`: distinct events get distinct times, the same event the same one. */
function timeOf(n: number | string): number {
  if (typeof n === 'number') return T0 + n;
  let sum = 0;
  for (const c of n) sum = (sum * 31 + c.charCodeAt(0)) % 1_000_000;
  return T0 + 10_000 + sum;
}

/** An event as the handlers would store it: its JSON, with its kind (the JSON's type) and time (its at) beside it. */
function ev(n: number | string, type = 'message'): NewEvent {
  const at = timeOf(n);
  return { kind: type, at, json: JSON.stringify({ type, text: `event ${n}`, at }) };
}

/** An event to store from its JSON object (its `type` and `at` become its kind and time). */
function event(fields: { type: string; at?: number; [field: string]: unknown }): NewEvent {
  const at = fields.at ?? T0;
  return { kind: fields.type, at, json: JSON.stringify(fields) };
}

/** An event as either stream gives it back: with its id and skip list. */
function stored(id: number, e: NewEvent, skip: string[] = []): StoredEvent {
  return { id, kind: e.kind, at: e.at, skip, json: e.json };
}

/** A direct message: stored for an offline recipient too, closed with its offline flag. */
function dm(event: NewEvent, from = ''): Delivery {
  return { from, event, storable: true };
}

/** Any other personal event (a private-chat signal): refused for an offline recipient, stored as is. */
function signal(event: NewEvent, from = ''): Delivery {
  return { from, event, storable: false };
}

/**
 * A direct message as the store keeps it, closed with its offline flag (the
 * literal form is checked by the deliver tests; this spares the others).
 */
function flagged(event: NewEvent, offline: boolean): NewEvent {
  return { ...event, json: `${event.json.slice(0, -1)},"offline":${offline}}` };
}

function cursor(inbox: number, lobby = 0): Cursor {
  return new Cursor(inbox, lobby);
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

    function end(token: string, now: number, extra: { reason?: 'logout' | 'timeout' | 'expired'; idleSince?: number; startedBefore?: number; event?: NewEvent } = {}) {
      return {
        token,
        reason: extra.reason ?? ('logout' as const),
        now,
        idleSince: extra.idleSince,
        startedBefore: extra.startedBefore,
        event: extra.event ?? ev('end', 'session_end'),
      };
    }

    /** admitCommand's options: no activity and no rate limit unless given. */
    const admit = (over: Partial<{ activity: boolean; rate: number; burst: number }> = {}) => ({
      activity: false,
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
        await state.setPeerListener('alice', token, { host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect(await state.peerListener('alice')).toEqual({ host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect(await state.deliver('alice', signal(ev(1)), BIG_CAP)).toEqual({ ok: true, id: 1, online: true });

        expect(await state.removeUser('alice')).toBe(true);
        expect(await state.userExists('alice')).toBe(false);
        expect(await state.loginRecord('alice')).toBeNull();
        expect(await state.listUsers()).toEqual(['bob']);
        expect(await state.online()).toEqual([]);
        expect(await state.blocked('alice')).toEqual([]);
        expect(await state.blockedBy('bob')).toEqual([]);
        expect(await state.admitCommand('alice', token, T0, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.sessionCursor('alice', token)).toBeNull();
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
        expect(await state.countAddressFailure(a, 'unknown_user', 1, T0, T0 + 5000, 60_000)).toBe('locked');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 4999, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 5000, 0, 0, 60_000)).toBe('ok');
        expect(await state.guardAddress('10.0.0.5', T0, 0, 0, 60_000)).toBe('ok');
      });

      it('countAddressFailure locks on the limit-th failure, counts nothing while locked, then counts again', async () => {
        const a = '10.0.0.6';
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0, T0 + 1000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0, T0 + 1000, 60_000)).toBe('counted');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('ok');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0, T0 + 1000, 60_000)).toBe('locked');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('address_blocked');
        // While it is locked, a failure neither counts nor locks it again.
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 999, T0 + 50_000, 60_000)).toBe('still_locked');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 999, T0 + 50_000, 60_000)).toBe('still_locked');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 999, T0 + 50_000, 60_000)).toBe('still_locked');
        expect(await state.guardAddress(a, T0 + 1000, 0, 0, 60_000)).toBe('ok');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 1000, T0 + 9000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 1000, T0 + 9000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 1000, T0 + 9000, 60_000)).toBe('locked');
        expect(await state.guardAddress(a, T0 + 5000, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.guardAddress(a, T0 + 9000, 0, 0, 60_000)).toBe('ok');
      });

      it('an address counts unknown names and wrong passwords apart, under one lock', async () => {
        const a = '10.0.0.8';
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0, T0 + 1000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0, T0 + 1000, 60_000)).toBe('counted');
        // Two unknown names do not bring a wrong password nearer its own limit.
        expect(await state.countAddressFailure(a, 'wrong_password', 3, T0, T0 + 1000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 'wrong_password', 3, T0, T0 + 1000, 60_000)).toBe('counted');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('ok');
        expect(await state.countAddressFailure(a, 'wrong_password', 3, T0, T0 + 1000, 60_000)).toBe('locked');
        expect(await state.guardAddress(a, T0, 0, 0, 60_000)).toBe('address_blocked');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0, T0 + 1000, 60_000)).toBe('still_locked');
        // The lock started both counts again.
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 1000, T0 + 2000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 'unknown_user', 3, T0 + 1000, T0 + 2000, 60_000)).toBe('counted');
        expect(await state.countAddressFailure(a, 'wrong_password', 3, T0 + 1000, T0 + 2000, 60_000)).toBe('counted');
      });

      it('an address record is forgotten after its ttl', async () => {
        const a = '10.0.0.7';
        expect(await state.countAddressFailure(a, 'unknown_user', 1, T0, T0 + 3_600_000, 300)).toBe('locked');
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
        const opened = await state.openSession('alice', 'alice:t', T0, '127.0.0.1', 0);
        expect(opened).toEqual({ ok: true, cursor: { inbox: 0, lobby: 0 }, gap: false });
        expect(opened.ok && opened.cursor).toBeInstanceOf(Cursor);
        expect(await state.admitCommand('alice', 'alice:t', T0, admit())).toEqual({ ok: true });
        expect(await state.sessionCursor('alice', 'alice:t')).toEqual({ ended: false, cursor: { inbox: 0, lobby: 0 } });
        expect(await state.peerListener('alice')).toBeNull();
      });

      it('keeps a hash of the token, never the token: a copy of the store holds nothing a client could present', async () => {
        await users('alice');
        const token = 'alice:Jx3mQ9vT0pLs2wYb8nZcAg';
        expect(await state.openSession('alice', token, T0, '127.0.0.1', 0)).toMatchObject({ ok: true });
        const session = await (await raw()).hgetall('s:{alice}');
        expect(Object.values(session).some((value) => value.includes('Jx3mQ9vT0pLs2wYb8nZcAg'))).toBe(false);
        expect(session.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
        // Presenting the stored value instead of the token gets nothing.
        expect(await state.admitCommand('alice', session.token, T0, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.sessionCursor('alice', session.token)).toBeNull();
        expect(await state.admitCommand('alice', token, T0, admit())).toEqual({ ok: true });
      });

      it('stores the cursor {inbox: seen, lobby: lobbyHead}', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.appendLobby(['bob'], ev('p1', 'presence'), BIG_CAP)).toBe(1);
        expect(await state.appendLobby(['bob'], ev('p2', 'presence'), BIG_CAP)).toBe(2);
        const head = await state.lobbyHead();
        expect(await state.openSession('alice', 'alice:t2', T0 + 2, '127.0.0.1', head)).toEqual({
          ok: true,
          cursor: { inbox: 1, lobby: 2 },
          gap: false,
        });
        expect(await state.sessionCursor('alice', 'alice:t2')).toEqual({ ended: false, cursor: { inbox: 1, lobby: 2 } });
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
        expect(await state.openSession('alice', token3, T0 + 4, '127.0.0.1', 41)).toEqual({ ok: true, cursor: { inbox: 2, lobby: 41 }, gap: false });
        expect(await state.sessionCursor('alice', token3)).toEqual({ ended: false, cursor: { inbox: 2, lobby: 41 } });
      });

      it('refuses a second session while one is live, allows one after it ended', async () => {
        const token = await login('alice');
        expect(await state.openSession('alice', 'alice:other', T0 + 1, '10.0.0.9', 0)).toEqual({ ok: false, reason: 'already_logged_in' });
        expect(await state.admitCommand('alice', token, T0 + 1, admit())).toEqual({ ok: true });
        expect(await state.admitCommand('alice', 'alice:other', T0 + 1, admit())).toEqual({ ok: false, reason: 'none' });
        expect((await state.endSession('alice', end(token, T0 + 2), BIG_CAP, RETAIN)).ok).toBe(true);
        expect(await state.openSession('alice', 'alice:other', T0 + 3, '10.0.0.9', 0)).toMatchObject({ ok: true });
        expect(await state.admitCommand('alice', 'alice:other', T0 + 3, admit())).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0 + 3, admit())).toEqual({ ok: false, reason: 'none' });
      });

      it('refuses a locked account while the lock lasts', async () => {
        await users('alice');
        expect(await state.countPasswordFailure('alice', 1, T0, T0 + 5000)).toBe('locked');
        expect(await state.openSession('alice', 'alice:t', T0, '127.0.0.1', 0)).toEqual({ ok: false, reason: 'account_blocked' });
        expect(await state.openSession('alice', 'alice:t', T0 + 4999, '127.0.0.1', 0)).toEqual({ ok: false, reason: 'account_blocked' });
        expect(await state.admitCommand('alice', 'alice:t', T0, admit())).toEqual({ ok: false, reason: 'none' });
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
          cursor: { inbox: 3, lobby: 0 },
          gap: false,
        });
        expect(await state.sessionCursor('alice', 'alice:t2')).toEqual({ ended: false, cursor: { inbox: 3, lobby: 0 } });
        expect(view(await state.read('alice', 3, 10))).toEqual({ events: [stored(4, flagged(ev(4), true))], last: 4, gap: false });
      });

      it('reports a gap when stored events after what the last session saw were trimmed', async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 10), 2, RETAIN)).toEqual({ ok: true, id: 1 });
        for (let n = 2; n <= 4; n++) {
          expect(await state.deliver('alice', dm(ev(n)), 2)).toEqual({ ok: true, id: n, online: false });
        }
        // Events 3 and 4 are kept; 2, right after the cursor, is gone.
        expect(await state.openSession('alice', 'alice:t2', T0 + 20, '127.0.0.1', 0)).toEqual({
          ok: true,
          cursor: { inbox: 1, lobby: 0 },
          gap: true,
        });
      });

      it('reports no gap when only events the last session saw were trimmed', async () => {
        const token = await login('alice');
        for (let n = 1; n <= 3; n++) await state.deliver('alice', signal(ev(n)), 3);
        expect(await state.endSession('alice', end(token, T0 + 10), 3, RETAIN)).toEqual({ ok: true, id: 4 });
        for (let n = 5; n <= 6; n++) expect(await state.deliver('alice', dm(ev(n)), 3)).toMatchObject({ ok: true, id: n });
        // Kept: 4 (seen, the session_end), 5 and 6: everything after the cursor.
        expect(ids((await state.read('alice', 0, 10)).events)).toEqual([4, 5, 6]);
        expect(await state.openSession('alice', 'alice:t2', T0 + 20, '127.0.0.1', 0)).toEqual({
          ok: true,
          cursor: { inbox: 4, lobby: 0 },
          gap: false,
        });
      });
    });

    describe('admitCommand', () => {
      it('is none without a session or with another token', async () => {
        await users('alice');
        expect(await state.admitCommand('alice', 'alice:t', T0, admit())).toEqual({ ok: false, reason: 'none' });
        const token = await login('alice');
        expect(await state.admitCommand('alice', token, T0, admit())).toEqual({ ok: true });
        expect(await state.admitCommand('alice', 'alice:wrong', T0, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.admitCommand('alice', '', T0, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.admitCommand('bob', 'alice:token', T0, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.admitCommand('nobody', 'nobody:t', T0, admit({ activity: true, rate: 1, burst: 1 }))).toEqual({ ok: false, reason: 'none' });
      });

      it('activity resets the idle timer; a command without activity does not', async () => {
        const token = await login('alice', T0);
        expect(await state.admitCommand('alice', token, T0 + 5000, admit({ activity: false }))).toEqual({ ok: true });
        expect(await state.endSession('alice', end(token, T0 + 6000, { reason: 'timeout', idleSince: T0 + 4000 }), BIG_CAP, RETAIN)).toMatchObject({
          ok: true,
        });

        const token2 = await login('alice', T0 + 10_000, 'alice:t2');
        expect(await state.admitCommand('alice', token2, T0 + 15_000, admit({ activity: true }))).toEqual({ ok: true });
        expect(
          await state.endSession('alice', end(token2, T0 + 16_000, { reason: 'timeout', idleSince: T0 + 14_000 }), BIG_CAP, RETAIN),
        ).toEqual({ ok: false, reason: 'active', lastActive: T0 + 15_000 });
      });

      it('limits the command rate (rate 0 = none)', async () => {
        const token = await login('alice');
        for (let k = 0; k < 20; k++) {
          expect(await state.admitCommand('alice', token, T0, admit({ rate: 0, burst: 0 }))).toEqual({ ok: true });
        }
        const limited = admit({ rate: 2, burst: 3 });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        expect(await state.admitCommand('alice', token, T0 + 250, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        expect(await state.admitCommand('alice', token, T0 + 500, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0 + 500, limited)).toEqual({ ok: false, reason: 'rate_limited' });
      });

      it('the rate limit is the session\'s, on every replica', async () => {
        const token = await login('alice');
        const other = await replica();
        const limited = admit({ rate: 1, burst: 2 });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: true });
        expect(await other.admitCommand('alice', token, T0, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        expect(await other.admitCommand('alice', token, T0, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        // Another user's session has a bucket of its own.
        const bob = await login('bob');
        expect(await other.admitCommand('bob', bob, T0, limited)).toEqual({ ok: true });
      });

      it('a rate-limited command is not activity', async () => {
        const token = await login('alice', T0);
        const limited = admit({ rate: 1, burst: 1, activity: true });
        expect(await state.admitCommand('alice', token, T0 + 2000, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0 + 2500, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        expect(
          await state.endSession('alice', end(token, T0 + 3000, { reason: 'timeout', idleSince: T0 + 2000 }), BIG_CAP, RETAIN),
        ).toMatchObject({ ok: true });
      });

      it("is 'ended' for an ended session's token, before the rate limit, on every replica; none for any other token", async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end(token, T0 + 10, { reason: 'timeout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        const other = await replica();
        // A burst of 1: a second admission would be rate-limited if the bucket were consulted.
        for (let k = 0; k < 3; k++) {
          expect(await state.admitCommand('alice', token, T0 + 20, admit({ activity: true, rate: 1, burst: 1 }))).toEqual({
            ok: false,
            reason: 'ended',
          });
        }
        expect(await other.admitCommand('alice', token, T0 + 20, admit())).toEqual({ ok: false, reason: 'ended' });
        expect(await state.admitCommand('alice', 'alice:wrong', T0 + 20, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.admitCommand('alice', '', T0 + 20, admit())).toEqual({ ok: false, reason: 'none' });

        // A logout ends it the same way; once a new session opened, the old token is none.
        const token2 = await login('alice', T0 + 30, 'alice:t2');
        expect(await state.admitCommand('alice', token, T0 + 31, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.endSession('alice', end(token2, T0 + 40, { reason: 'logout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
        expect(await state.admitCommand('alice', token2, T0 + 50, admit())).toEqual({ ok: false, reason: 'ended' });
      });

      it('an ended session admits nothing, so it cannot be kept from timing out by commands', async () => {
        const token = await login('alice', T0);
        expect(await state.endSession('alice', end('', T0 + 1000, { reason: 'timeout', idleSince: T0 }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.admitCommand('alice', token, T0 + 2000, admit({ activity: true }))).toEqual({ ok: false, reason: 'ended' });
        expect(await state.endSession('alice', end('', T0 + 3000, { reason: 'timeout', idleSince: T0 + 2000 }), BIG_CAP, RETAIN)).toEqual({
          ok: false,
          reason: 'none',
        });
      });
    });

    describe('sessionCursor', () => {
      it('is null without a session, with another token, or for another user', async () => {
        await users('alice');
        expect(await state.sessionCursor('alice', 'alice:token')).toBeNull();
        expect(await state.sessionCursor('nobody', 'nobody:token')).toBeNull();
        const token = await login('alice');
        expect(await state.sessionCursor('alice', 'alice:wrong')).toBeNull();
        expect(await state.sessionCursor('alice', '')).toBeNull();
        expect(await state.sessionCursor('bob', token)).toBeNull();
      });

      it('a live session: not ended, with its stored cursor (a Cursor), on every replica', async () => {
        const token = await login('alice', T0, 'alice:token', 5);
        const live = await state.sessionCursor('alice', token);
        expect(live).toEqual({ ended: false, cursor: { inbox: 0, lobby: 5 } });
        expect(live?.cursor).toBeInstanceOf(Cursor);
        await state.saveCursor('alice', token, cursor(3, 8));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 3, lobby: 8 } });
        const other = await replica();
        expect(await other.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 3, lobby: 8 } });
      });

      it('an ended session: ended, with the cursor it last stored', async () => {
        const token = await login('alice');
        await state.deliver('alice', signal(ev(1)), BIG_CAP);
        await state.saveCursor('alice', token, cursor(1, 7));
        expect(await state.endSession('alice', end(token, T0 + 10, { reason: 'timeout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: true, cursor: { inbox: 1, lobby: 7 } });
        expect(await state.sessionCursor('alice', 'alice:wrong')).toBeNull();

        const token2 = await login('alice', T0 + 30, 'alice:t2', 9);
        expect(await state.sessionCursor('alice', token)).toBeNull();
        expect(await state.endSession('alice', end(token2, T0 + 40, { reason: 'logout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 3 });
        expect(await state.sessionCursor('alice', token2)).toEqual({ ended: true, cursor: { inbox: 2, lobby: 9 } });
      });

      it('neither admits a command nor counts as activity', async () => {
        const token = await login('alice', T0);
        const limited = admit({ rate: 1, burst: 1 });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: true });
        for (let k = 0; k < 5; k++) expect(await state.sessionCursor('alice', token)).toMatchObject({ ended: false });
        // The bucket refilled by exactly one, untouched by the look-ups.
        expect(await state.admitCommand('alice', token, T0 + 1000, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0 + 1000, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        expect(await state.endSession('alice', end('', T0 + 9000, { reason: 'timeout', idleSince: T0 }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
      });
    });

    describe('recordActivity', () => {
      it('records the cursor and resets the idle timer of a live session', async () => {
        const token = await login('alice', T0);
        for (let n = 1; n <= 4; n++) await state.deliver('alice', signal(ev(n)), BIG_CAP);
        await state.recordActivity('alice', token, T0 + 5000, cursor(3, 4));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 3, lobby: 4 } });
        // Another replica reads from it.
        const other = await replica();
        expect(polled(await other.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 3, lobby: 4 },
          events: [stored(4, ev(4))],
          last: 4,
          gap: false,
        });
        expect(await state.endSession('alice', end('', T0 + 6000, { reason: 'timeout', idleSince: T0 + 4999 }), BIG_CAP, RETAIN)).toEqual({
          ok: false,
          reason: 'active',
          lastActive: T0 + 5000,
        });
        // A later record replaces both positions, whichever way they moved.
        await state.recordActivity('alice', token, T0 + 7000, cursor(1, 9));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 1, lobby: 9 } });
        expect(await state.endSession('alice', end('', T0 + 8000, { reason: 'timeout', idleSince: T0 + 7000 }), BIG_CAP, RETAIN)).toEqual({
          ok: true,
          id: 5,
        });
      });

      it('is not held back by the command rate limit', async () => {
        const token = await login('alice', T0);
        const limited = admit({ rate: 1, burst: 1 });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: true });
        expect(await state.admitCommand('alice', token, T0, limited)).toEqual({ ok: false, reason: 'rate_limited' });
        await state.recordActivity('alice', token, T0 + 100, cursor(0, 2));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 0, lobby: 2 } });
        expect(await state.endSession('alice', end('', T0 + 200, { reason: 'timeout', idleSince: T0 + 99 }), BIG_CAP, RETAIN)).toMatchObject({
          ok: false,
          reason: 'active',
        });
      });

      it('leaves a session alone with a wrong token, and creates none without one', async () => {
        const token = await login('alice', T0);
        await state.saveCursor('alice', token, cursor(0, 1));
        await state.recordActivity('alice', 'alice:wrong', T0 + 5000, cursor(9, 9));
        await state.recordActivity('alice', '', T0 + 5000, cursor(9, 9));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 0, lobby: 1 } });
        expect(await state.sessionCursor('alice', 'alice:wrong')).toBeNull();
        // No activity recorded: it times out as idle since it opened.
        expect(await state.endSession('alice', end('', T0 + 6000, { reason: 'timeout', idleSince: T0 }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });

        await users('bob');
        await state.recordActivity('bob', 'bob:token', T0, cursor(1, 1));
        expect(await state.sessionCursor('bob', 'bob:token')).toBeNull();
        expect(await state.admitCommand('bob', 'bob:token', T0, admit())).toEqual({ ok: false, reason: 'none' });
        expect(await state.openSession('bob', 'bob:t', T0 + 1, '127.0.0.1', 0)).toEqual({ ok: true, cursor: { inbox: 0, lobby: 0 }, gap: false });
      });

      it('leaves an ended session alone: its cursor stays, it stays ended, and it still expires', async () => {
        const token = await login('alice', T0);
        await state.saveCursor('alice', token, cursor(0, 2));
        expect(await state.endSession('alice', end(token, T0 + 10), BIG_CAP, 300)).toEqual({ ok: true, id: 1 });
        await state.recordActivity('alice', token, T0 + 20, cursor(9, 9));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: true, cursor: { inbox: 0, lobby: 2 } });
        expect(await state.admitCommand('alice', token, T0 + 30, admit())).toEqual({ ok: false, reason: 'ended' });
        // The client can still read its session_end from the stored cursor.
        expect(polled(await state.poll('alice', token, null, 10))).toMatchObject({ ok: true, after: { inbox: 0, lobby: 2 }, last: 1 });
        // Not brought back as a key without its expiry.
        await vi.waitFor(async () => expect(await state.sessionCursor('alice', token)).toBeNull(), WAIT);
        await state.recordActivity('alice', token, T0 + 40, cursor(9, 9));
        expect(await state.sessionCursor('alice', token)).toBeNull();
        expect(await state.admitCommand('alice', token, T0 + 50, admit())).toEqual({ ok: false, reason: 'none' });
      });

      it('leaves the next session alone when an old connection records late', async () => {
        const token = await login('alice', T0);
        expect((await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).ok).toBe(true);
        const token2 = await login('alice', T0 + 2, 'alice:t2');
        await state.recordActivity('alice', token, T0 + 5000, cursor(9, 9));
        expect(await state.sessionCursor('alice', token2)).toEqual({ ended: false, cursor: { inbox: 1, lobby: 0 } });
        expect(await state.endSession('alice', end('', T0 + 6000, { reason: 'timeout', idleSince: T0 + 2 }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
      });
    });

    describe('setPeerListener / peerListener', () => {
      it('is null until a live session sets its listener', async () => {
        await users('alice', 'bob');
        expect(await state.peerListener('alice')).toBeNull();
        const token = await login('alice');
        expect(await state.peerListener('alice')).toBeNull();
        await state.setPeerListener('alice', token, { host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect(await state.peerListener('alice')).toEqual({ host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect(await state.peerListener('bob')).toBeNull();
        expect(await state.peerListener('nobody')).toBeNull();
        // Another replica sees it too.
        const other = await replica();
        expect(await other.peerListener('alice')).toEqual({ host: '192.0.2.7', port: 4567, fingerprint: FP });
        // A later call replaces it.
        await other.setPeerListener('alice', token, { host: '2001:db8::1', port: 9, fingerprint: FP2 });
        expect(await state.peerListener('alice')).toEqual({ host: '2001:db8::1', port: 9, fingerprint: FP2 });
      });

      it('is null with only one of host and port', async () => {
        await login('alice');
        await login('bob');
        const client = await raw();
        await client.hset(keys.session('alice'), 'p2pHost', '192.0.2.7');
        await client.hset(keys.session('bob'), 'p2pPort', '4567');
        expect(await state.peerListener('alice')).toBeNull();
        expect(await state.peerListener('bob')).toBeNull();
      });

      it('is null without a fingerprint: a listener an older replica recorded could not be verified', async () => {
        await login('alice');
        const client = await raw();
        await client.hset(keys.session('alice'), 'p2pHost', '192.0.2.7');
        await client.hset(keys.session('alice'), 'p2pPort', '4567');
        expect(await state.peerListener('alice')).toBeNull();
      });

      it('keeps each session\'s own fingerprint, which the next p2p replaces with host and port', async () => {
        const aliceToken = await login('alice');
        const bobToken = await login('bob');
        await state.setPeerListener('alice', aliceToken, { host: '192.0.2.7', port: 4567, fingerprint: FP });
        await state.setPeerListener('bob', bobToken, { host: '192.0.2.8', port: 4568, fingerprint: FP2 });
        expect(await state.peerListener('alice')).toEqual({ host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect(await state.peerListener('bob')).toEqual({ host: '192.0.2.8', port: 4568, fingerprint: FP2 });
        await state.setPeerListener('alice', aliceToken, { host: '192.0.2.7', port: 4567, fingerprint: FP2 });
        expect(await state.peerListener('alice')).toEqual({ host: '192.0.2.7', port: 4567, fingerprint: FP2 });
        // Beside the session's other fields, and gone with the session.
        expect(await state.sessionCursor('alice', aliceToken)).toEqual({ ended: false, cursor: { inbox: 0, lobby: 0 } });
        expect((await state.endSession('alice', end(aliceToken, T0 + 1), BIG_CAP, RETAIN)).ok).toBe(true);
        await login('alice', T0 + 2, 'alice:t2');
        expect(await state.peerListener('alice')).toBeNull();
      });

      it('is not carried over into the next session', async () => {
        const token = await login('alice');
        await state.setPeerListener('alice', token, { host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect((await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).ok).toBe(true);
        await login('alice', T0 + 2, 'alice:t2');
        expect(await state.peerListener('alice')).toBeNull();
      });

      it('leaves a session alone with a wrong token, and creates none without one', async () => {
        const token = await login('alice');
        await state.setPeerListener('alice', 'alice:wrong', { host: '192.0.2.66', port: 666, fingerprint: FP2 });
        await state.setPeerListener('alice', '', { host: '192.0.2.66', port: 666, fingerprint: FP2 });
        expect(await state.peerListener('alice')).toBeNull();
        await state.setPeerListener('alice', token, { host: '192.0.2.7', port: 4567, fingerprint: FP });
        await state.setPeerListener('alice', 'alice:wrong', { host: '192.0.2.66', port: 666, fingerprint: FP2 });
        expect(await state.peerListener('alice')).toEqual({ host: '192.0.2.7', port: 4567, fingerprint: FP });

        await users('bob');
        await state.setPeerListener('bob', 'bob:token', { host: '192.0.2.8', port: 4568, fingerprint: FP });
        expect(await state.peerListener('bob')).toBeNull();
        expect(await state.sessionCursor('bob', 'bob:token')).toBeNull();
        expect(await state.admitCommand('bob', 'bob:token', T0, admit())).toEqual({ ok: false, reason: 'none' });
      });

      it('leaves an ended session alone', async () => {
        const token = await login('alice');
        expect((await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).ok).toBe(true);
        await state.setPeerListener('alice', token, { host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect(await state.peerListener('alice')).toBeNull();
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: true, cursor: { inbox: 0, lobby: 0 } });
        expect(await state.admitCommand('alice', token, T0 + 2, admit())).toEqual({ ok: false, reason: 'ended' });
      });

      it('is not activity: the idle timer keeps running', async () => {
        const token = await login('alice', T0);
        await state.setPeerListener('alice', token, { host: '192.0.2.7', port: 4567, fingerprint: FP });
        expect(await state.endSession('alice', end('', T0 + 9000, { reason: 'timeout', idleSince: T0 }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
      });
    });

    describe('saveCursor', () => {
      it('records both positions, which poll without `after` and sessionCursor then return', async () => {
        const token = await login('alice');
        for (let n = 1; n <= 3; n++) await state.deliver('alice', signal(ev(n)), BIG_CAP);
        await state.saveCursor('alice', token, cursor(2, 5));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 2, lobby: 5 } });
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 5 },
          events: [stored(3, ev(3))],
          last: 3,
          gap: false,
        });
        // Another replica reads the same stored cursor.
        const other = await replica();
        expect(await other.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 2, lobby: 5 } });
      });

      it('has no effect with a wrong token or without a session; an ended session takes it (acknowledging its session_end)', async () => {
        await users('bob');
        await state.saveCursor('bob', 'bob:token', cursor(4, 4));
        expect(await state.admitCommand('bob', 'bob:token', T0, admit())).toEqual({ ok: false, reason: 'none' });

        const token = await login('alice');
        await state.saveCursor('alice', token, cursor(1, 1));
        await state.saveCursor('alice', 'alice:wrong', cursor(9, 9));
        await state.saveCursor('alice', '', cursor(9, 9));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 1, lobby: 1 } });

        expect(await state.endSession('alice', end(token, T0 + 1), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        await state.saveCursor('alice', 'alice:wrong', cursor(7, 7));
        await state.saveCursor('alice', token, cursor(1, 2));
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: true, cursor: { inbox: 1, lobby: 2 } });
        expect(await state.admitCommand('alice', token, T0 + 2, admit())).toEqual({ ok: false, reason: 'ended' });
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
            stored(1, ev(2)),
            stored(2, ev(3)),
          ],
          last: 2,
          gap: false,
        });
      });

      it("to an offline user: not storable is refused as 'offline' and stores nothing; storable is stored, closed with \"offline\":true", async () => {
        await users('alice');
        expect(await state.deliver('alice', signal(ev('signal'), 'bob'), BIG_CAP)).toEqual({ ok: false, reason: 'offline' });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
        expect(await state.deliver('alice', dm(event({ type: 'message', from: 'bob', text: 'hi', at: T0 + 7 }), 'bob'), BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: false,
        });
        const [kept] = (await state.read('alice', 0, 10)).events;
        expect(kept).toEqual({
          id: 1,
          kind: 'message',
          at: T0 + 7,
          skip: [],
          json: `{"type":"message","from":"bob","text":"hi","at":${T0 + 7},"offline":true}`,
        });
        expect(JSON.parse(kept.json)).toEqual({ type: 'message', from: 'bob', text: 'hi', at: T0 + 7, offline: true });
      });

      it('to an online user: not storable is stored as is; storable is closed with "offline":false', async () => {
        await login('alice');
        expect(await state.deliver('alice', signal(event({ type: 'private_request', from: 'bob', at: T0 + 1 }), 'bob'), BIG_CAP)).toEqual({
          ok: true,
          id: 1,
          online: true,
        });
        expect(await state.deliver('alice', dm(event({ type: 'message', from: 'bob', text: 'hi', at: T0 + 2 }), 'bob'), BIG_CAP)).toEqual({
          ok: true,
          id: 2,
          online: true,
        });
        const events = (await state.read('alice', 0, 10)).events;
        expect(events).toEqual([
          { id: 1, kind: 'private_request', at: T0 + 1, skip: [], json: `{"type":"private_request","from":"bob","at":${T0 + 1}}` },
          { id: 2, kind: 'message', at: T0 + 2, skip: [], json: `{"type":"message","from":"bob","text":"hi","at":${T0 + 2},"offline":false}` },
        ]);
        expect(JSON.parse(events[1].json)).toEqual({ type: 'message', from: 'bob', text: 'hi', at: T0 + 2, offline: false });
      });

      it('the offline flag keeps a direct message valid JSON, its body byte for byte', async () => {
        await users('alice');
        const message = { type: 'message', from: 'bob', text: ' two  spaces, "quoted" \\ ünïcödé 🙂 {braces} }', at: T0 };
        const body = JSON.stringify(message);
        expect(await state.deliver('alice', dm(event(message), 'bob'), BIG_CAP)).toMatchObject({ ok: true, online: false });
        await login('alice');
        expect(await state.deliver('alice', dm(event(message), 'bob'), BIG_CAP)).toMatchObject({ ok: true, online: true });
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
        expect((await state.read('alice', 1, 10)).events).toEqual([stored(2, flagged(ev('message'), true))]);
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
        results.forEach((r, n) => expect(r.ok && byId.get(r.id)).toBe(flagged(ev(n), true).json));
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
            stored(3, ev(3)),
            stored(4, ev(4)),
            stored(5, ev(5)),
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
            stored(1, ev(1)),
            stored(2, ev(2)),
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
            stored(4, ev(4)),
            stored(5, ev(5)),
            stored(6, ev(6)),
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
          event({ type: 'message', text: 'héllo wörld ✓ 日本語 🙂', at: T0 + 3 }),
          event({ type: 'private_request', text: 'line\nbreak "quoted" \\ back\tslash', at: T0 + 1 }),
          event({ type: 'message', text: ' ', at: T0 + 2 }),
          // Kind and time are the ones given, not read from the JSON.
          { kind: 'message', at: T0 + 4, json: '{"type":"message","text":"  spaced  ","at":1}' },
        ];
        for (const body of bodies) await state.deliver('alice', signal(body), BIG_CAP);
        expect((await state.read('alice', 0, 10)).events).toEqual(bodies.map((e, k) => stored(k + 1, e)));
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
            stored(2, ev(2)),
            stored(3, ev(3)),
          ],
          last: 4,
          gap: false,
        });
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 1, lobby: 7 } });
        // Acknowledging is not reading: the stored cursor does not move past `after`.
        expect(polled(await state.poll('alice', token, null, 10))).toMatchObject({ ok: true, after: { inbox: 1, lobby: 7 } });
        const again = await state.poll('alice', token, null, 10);
        expect(again.ok && ids(again.inbox.events)).toEqual([2, 3, 4]);
        // A later acknowledgement replaces both positions, whichever way they moved.
        expect(polled(await state.poll('alice', token, cursor(3, 2), 10))).toMatchObject({ ok: true, after: { inbox: 3, lobby: 2 } });
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 3, lobby: 2 } });
      });

      it('without `after` reads from the stored cursor, returns it, and leaves it for the caller to save', async () => {
        const token = await session(5);
        const first = await state.poll('alice', token, null, 2);
        expect(polled(first)).toEqual({
          ok: true,
          after: { inbox: 0, lobby: 0 },
          events: [
            stored(1, ev(1)),
            stored(2, ev(2)),
          ],
          last: 5,
          gap: false,
        });
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 0, lobby: 0 } });
        expect(polled(await state.poll('alice', token, null, 2))).toEqual(polled(first));
        await state.saveCursor('alice', token, cursor(first.ok ? first.inbox.cursor : -1, 4));
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 4 },
          events: [
            stored(3, ev(3)),
            stored(4, ev(4)),
            stored(5, ev(5)),
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
          events: [stored(6, ev(6))],
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
          events: [stored(4, flagged(ev(4), true))],
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
            stored(4, ev(4)),
            stored(5, ev(5)),
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
            stored(2, ev(2)),
            stored(3, endEvent),
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
            stored(1, ev(1)),
            stored(2, ev(2)),
          ],
          last: 3,
          gap: false,
        });
        expect(polled(await state.poll('alice', token, cursor(2), 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 0 },
          events: [stored(3, endEvent)],
          last: 3,
          gap: false,
        });
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({
          ok: true,
          after: { inbox: 2, lobby: 0 },
          events: [stored(3, endEvent)],
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
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [stored(1, endEvent)], last: 1, gap: false });
      });

      it('with startedBefore, ends only a session started by then; a younger one is young, with its start', async () => {
        const token = await login('alice', T0 + 100);
        expect(await state.endSession('alice', end('', T0 + 200, { reason: 'expired', startedBefore: T0 + 99 }), BIG_CAP, RETAIN)).toEqual({
          ok: false,
          reason: 'young',
          started: T0 + 100,
        });
        expect(await state.admitCommand('alice', token, T0 + 200, admit())).toEqual({ ok: true });
        expect(await state.endSession('alice', end('', T0 + 200, { reason: 'expired', startedBefore: T0 + 100 }), BIG_CAP, RETAIN)).toMatchObject({ ok: true });
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
        expect(await state.admitCommand('alice', token, T0 + 2, admit())).toEqual({ ok: true });
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: [], last: 0, gap: false });
      });

      it("token '' ends whichever session is live", async () => {
        const token = await login('alice');
        expect(await state.endSession('alice', end('', T0 + 1, { reason: 'timeout' }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 1 });
        expect(await state.admitCommand('alice', token, T0 + 2, admit())).toEqual({ ok: false, reason: 'ended' });
        expect(await state.sessionCursor('alice', token)).toMatchObject({ ended: true });
      });

      it('with an idle deadline: active (with the real last activity) until the session is idle that long', async () => {
        const token = await login('alice', T0);
        expect(await state.admitCommand('alice', token, T0 + 5000, admit({ activity: true }))).toEqual({ ok: true });
        expect(await state.endSession('alice', end('', T0 + 6000, { reason: 'timeout', idleSince: T0 + 4999 }), BIG_CAP, RETAIN)).toEqual({
          ok: false,
          reason: 'active',
          lastActive: T0 + 5000,
        });
        expect(await state.admitCommand('alice', token, T0 + 6000, admit())).toEqual({ ok: true });
        expect(view(await state.read('alice', 0, 10))).toMatchObject({ events: [], last: 0 });
        expect(await state.endSession('alice', end('', T0 + 7000, { reason: 'timeout', idleSince: T0 + 5000 }), BIG_CAP, RETAIN)).toEqual({
          ok: true,
          id: 1,
        });
        expect(await state.admitCommand('alice', token, T0 + 7000, admit())).toEqual({ ok: false, reason: 'ended' });
        expect(await state.sessionCursor('alice', token)).toMatchObject({ ended: true });
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
        expect(await state.admitCommand('alice', token, T0 + 2, admit())).toEqual({ ok: false, reason: 'ended' });
        expect(await state.sessionCursor('alice', token)).toMatchObject({ ended: true });
        await vi.waitFor(
          async () => expect(await state.admitCommand('alice', token, T0 + 3, admit())).toEqual({ ok: false, reason: 'none' }),
          WAIT,
        );
        expect(await state.sessionCursor('alice', token)).toBeNull();
        expect(polled(await state.poll('alice', token, cursor(0), 10))).toEqual({ ok: false, reason: 'none' });
        expect(polled(await state.poll('alice', token, null, 10))).toEqual({ ok: false, reason: 'none' });
        // The user and their inbox stay.
        expect(view(await state.read('alice', 0, 10))).toMatchObject({ last: 1 });
        expect(await state.openSession('alice', 'alice:t2', T0 + 4, '127.0.0.1', 0)).toEqual({ ok: true, cursor: { inbox: 1, lobby: 0 }, gap: false });
      });
    });

    describe('trimmedAfter', () => {
      it('is false while nothing after the cursor was trimmed, at or past the newest events too', async () => {
        await users('alice');
        expect(await state.trimmedAfter('alice', cursor(0, 0))).toBe(false);
        expect(await state.trimmedAfter('nobody', cursor(0, 0))).toBe(false);
        await login('alice');
        for (let n = 1; n <= 5; n++) await state.deliver('alice', signal(ev(n)), BIG_CAP);
        for (let n = 1; n <= 3; n++) await state.appendLobby([], ev(n, 'presence'), BIG_CAP);
        for (const inbox of [0, 1, 4, 5, 99]) {
          for (const lobby of [0, 2, 3, 99]) {
            expect(await state.trimmedAfter('alice', cursor(inbox, lobby)), `${inbox}-${lobby}`).toBe(false);
          }
        }
      });

      it('is true once inbox events after the cursor were trimmed; false from just before the oldest kept', async () => {
        await login('alice');
        for (let n = 1; n <= 6; n++) await state.deliver('alice', signal(ev(n)), 3);
        expect(ids((await state.read('alice', 0, 10)).events)).toEqual([4, 5, 6]);
        expect(await state.trimmedAfter('alice', cursor(0))).toBe(true);
        expect(await state.trimmedAfter('alice', cursor(2))).toBe(true);
        expect(await state.trimmedAfter('alice', cursor(3))).toBe(false);
        expect(await state.trimmedAfter('alice', cursor(5))).toBe(false);
        expect(await state.trimmedAfter('alice', cursor(6))).toBe(false);
        expect(await state.trimmedAfter('alice', cursor(99))).toBe(false);
        // Another user's inbox is not the user's.
        await users('bob');
        expect(await state.trimmedAfter('bob', cursor(0))).toBe(false);
      });

      it('is true once lobby events after the cursor were trimmed; false from just before the oldest kept', async () => {
        await users('alice');
        for (let n = 1; n <= 6; n++) await state.appendLobby([`u${n}`], ev(n, 'presence'), 3);
        expect(await state.trimmedAfter('alice', cursor(0, 0))).toBe(true);
        expect(await state.trimmedAfter('alice', cursor(0, 2))).toBe(true);
        expect(await state.trimmedAfter('alice', cursor(0, 3))).toBe(false);
        expect(await state.trimmedAfter('alice', cursor(0, 6))).toBe(false);
        expect(await state.trimmedAfter('alice', cursor(0, 99))).toBe(false);
        // The lobby is everyone's.
        expect(await state.trimmedAfter('nobody', cursor(0, 2))).toBe(true);
      });

      it('either stream trimmed after its position is a gap; each position is checked against its own stream', async () => {
        await login('alice');
        for (let n = 1; n <= 4; n++) await state.deliver('alice', signal(ev(n)), 2);
        for (let n = 1; n <= 6; n++) await state.appendLobby([], ev(n, 'broadcast'), 3);
        // Inbox keeps 3 and 4; the lobby keeps 4, 5 and 6.
        expect(await state.trimmedAfter('alice', cursor(2, 3))).toBe(false);
        expect(await state.trimmedAfter('alice', cursor(1, 3))).toBe(true);
        expect(await state.trimmedAfter('alice', cursor(2, 2))).toBe(true);
        expect(await state.trimmedAfter('alice', cursor(1, 2))).toBe(true);
        // Swapped positions: an inbox position of 3 is fine, a lobby position of 2 is not.
        expect(await state.trimmedAfter('alice', cursor(3, 2))).toBe(true);
        // The same answer on another replica, and what read and readLobby report.
        const other = await replica();
        for (const [inbox, lobby] of [
          [2, 3],
          [1, 3],
          [2, 2],
        ]) {
          const [i, l] = [await state.read('alice', inbox, 0), await state.readLobby(lobby, 0)];
          expect(await other.trimmedAfter('alice', cursor(inbox, lobby))).toBe(i.gap || l.gap);
        }
      });

      it('reads nothing away: a poll after it still sees every event', async () => {
        const token = await login('alice');
        for (let n = 1; n <= 3; n++) await state.deliver('alice', signal(ev(n)), BIG_CAP);
        expect(await state.trimmedAfter('alice', cursor(0))).toBe(false);
        expect(await state.sessionCursor('alice', token)).toEqual({ ended: false, cursor: { inbox: 0, lobby: 0 } });
        const r = await state.poll('alice', token, null, 10);
        expect(r.ok && ids(r.inbox.events)).toEqual([1, 2, 3]);
      });
    });

    describe('stored events: kind, time and skip', () => {
      it('inbox events come back with the kind and time they were stored with (not read from the JSON) and no skip, from read, poll and wake-ups', async () => {
        const token = await login('alice');
        const wakes: [string, StoredEvent][] = [];
        state.onWake((user, e) => wakes.push([user, e]));
        await state.watch('alice');
        const sent: NewEvent[] = [
          { kind: 'private_request', at: T0 + 500, json: '{"type":"private_request","from":"bob","at":1}' },
          { kind: 'private_accept', at: 0, json: '{"type":"private_accept","peer":"bob"}' },
          { kind: 'message', at: Date.UTC(2100, 0, 1, 0, 0, 0, 999), json: '{"type":"message","text":"a b  c {d} \\"e\\" ,f","at":2}' },
          // Times as given, in whatever order they come.
          { kind: 'private_decline', at: T0 + 1, json: '{"type":"private_decline","peer":"bob"}' },
        ];
        for (const e of sent) expect(await state.deliver('alice', signal(e, 'bob'), BIG_CAP)).toMatchObject({ ok: true });
        const dmEvent = event({ type: 'message', from: 'bob', text: 'hi', at: T0 + 9 });
        expect(await state.deliver('alice', dm(dmEvent, 'bob'), BIG_CAP)).toEqual({ ok: true, id: 5, online: true });
        const expected = [...sent.map((e, k) => stored(k + 1, e)), stored(5, flagged(dmEvent, false))];
        expect((await state.read('alice', 0, 10)).events).toEqual(expected);
        const polledPage = await state.poll('alice', token, cursor(0), 10);
        expect(polledPage.ok && polledPage.inbox.events).toEqual(expected);
        const other = await replica();
        expect((await other.read('alice', 2, 10)).events).toEqual(expected.slice(2));
        await vi.waitFor(() => expect(wakes).toEqual(expected.map((e) => ['alice', e])), WAIT);
      });

      it("a session_end is stored with its kind and time, and is the session's last event", async () => {
        const token = await login('alice');
        await state.deliver('alice', signal(ev(1)), BIG_CAP);
        const bye = event({ type: 'session_end', reason: 'timeout', at: T0 + 77, text: 'bye' });
        expect(await state.endSession('alice', end(token, T0 + 78, { reason: 'timeout', event: bye }), BIG_CAP, RETAIN)).toEqual({ ok: true, id: 2 });
        const [last] = (await state.read('alice', 1, 10)).events;
        expect(last).toEqual({ id: 2, kind: 'session_end', at: T0 + 77, skip: [], json: bye.json });
      });

      it('lobby events come back with their kind, time and skip list, from readLobby and wake-ups alike', async () => {
        const wakes: LobbyEvent[] = [];
        state.onLobby((e) => wakes.push(e));
        await state.watchLobby();
        const sent: [string[], NewEvent][] = [
          [[], { kind: 'broadcast', at: T0 + 3, json: '{"type":"broadcast","text":"to all  of you","at":3}' }],
          [['alice'], { kind: 'presence', at: T0 + 1, json: '{"type":"presence","user":"alice"}' }],
          [['bob', 'carol.c', 'd_e-f'], { kind: 'broadcast', at: 0, json: '{"type":"broadcast","text":"{x} y"}' }],
        ];
        for (const [k, [skip, e]] of sent.entries()) expect(await state.appendLobby(skip, e, BIG_CAP)).toBe(k + 1);
        const expected = sent.map(([skip, e], k) => stored(k + 1, e, skip));
        expect((await state.readLobby(0, 10)).events).toEqual(expected);
        await vi.waitFor(() => expect(wakes).toEqual(expected), WAIT);
        expect(wakes.map((e) => e.skip.length)).toEqual([0, 1, 3]);
      });
    });

    describe('entries written by an older version', () => {
      /**
       * Appends an entry as the scripts do (state/lua/includes/append.lua):
       * the stream's sequence (field `seq` of its hash) first, then the list.
       */
      async function olderAppend(hash: string, list: string, entry: string): Promise<number> {
        const client = await raw();
        const seq = await client.hincrby(hash, 'seq', 1);
        await client.rpush(list, entry);
        return seq;
      }

      it('an inbox entry that is only its JSON is read with the type and at of its JSON as kind and time, and no skip', async () => {
        await users('alice');
        const message = JSON.stringify({ type: 'message', from: 'bob', body: 'hi {there} you', at: T0 + 1, text: 'bob: hi {there} you', offline: true });
        const bye = JSON.stringify({ type: 'session_end', reason: 'logout', at: T0 + 2, text: 'You have been logged out' });
        expect(await olderAppend(keys.user('alice'), keys.inbox('alice'), message)).toBe(1);
        expect(await olderAppend(keys.user('alice'), keys.inbox('alice'), bye)).toBe(2);
        // New entries go on after them.
        expect(await state.deliver('alice', dm(ev(3)), BIG_CAP)).toEqual({ ok: true, id: 3, online: false });
        const expected: StoredEvent[] = [
          { id: 1, kind: 'message', at: T0 + 1, skip: [], json: message },
          { id: 2, kind: 'session_end', at: T0 + 2, skip: [], json: bye },
          stored(3, flagged(ev(3), true)),
        ];
        expect(view(await state.read('alice', 0, 10))).toEqual({ events: expected, last: 3, gap: false });
        expect((await state.read('alice', 1, 10)).events).toEqual(expected.slice(1));
        // Through a poll too, and on another replica.
        const token = await login('alice');
        const r = await state.poll('alice', token, cursor(0), 10);
        expect(r.ok && r.inbox.events).toEqual(expected);
        const other = await replica();
        expect((await other.read('alice', 0, 10)).events).toEqual(expected);
      });

      it('an older inbox entry without type or at reads with an empty kind and time 0', async () => {
        await users('alice');
        const bare = '{"n":1,"text":"no type, no time"}';
        expect(await olderAppend(keys.user('alice'), keys.inbox('alice'), bare)).toBe(1);
        expect((await state.read('alice', 0, 10)).events).toEqual([{ id: 1, kind: '', at: 0, skip: [], json: bare }]);
      });

      it('a lobby entry `<skip> <json>` is read with its skip list and the type and at of its JSON', async () => {
        const presence = JSON.stringify({ type: 'presence', user: 'bob', state: 'in', at: T0 + 1, text: 'bob logged in' });
        const broadcast = JSON.stringify({ type: 'broadcast', from: 'carol', body: 'a {b} c', at: T0 + 2, text: 'carol: a {b} c' });
        const toAll = JSON.stringify({ type: 'broadcast', from: 'dave', body: ' x ', at: T0 + 3, text: 'dave:  x ' });
        expect(await olderAppend(keys.lobbyMeta, keys.lobby, `bob ${presence}`)).toBe(1);
        expect(await olderAppend(keys.lobbyMeta, keys.lobby, `carol,alice,e.f_g-h ${broadcast}`)).toBe(2);
        // An empty skip list: the entry starts with the space.
        expect(await olderAppend(keys.lobbyMeta, keys.lobby, ` ${toAll}`)).toBe(3);
        expect(await state.lobbyHead()).toBe(3);
        expect(await state.appendLobby(['erin'], ev(4, 'presence'), BIG_CAP)).toBe(4);
        const expected: LobbyEvent[] = [
          { id: 1, kind: 'presence', at: T0 + 1, skip: ['bob'], json: presence },
          { id: 2, kind: 'broadcast', at: T0 + 2, skip: ['carol', 'alice', 'e.f_g-h'], json: broadcast },
          { id: 3, kind: 'broadcast', at: T0 + 3, skip: [], json: toAll },
          stored(4, ev(4, 'presence'), ['erin']),
        ];
        expect(await state.readLobby(0, 10)).toEqual({ events: expected, last: 4, cursor: 4, gap: false });
        expect((await state.readLobby(2, 10)).events).toEqual(expected.slice(2));
        const other = await replica();
        expect((await other.readLobby(0, 10)).events).toEqual(expected);
      });

      it('older entries leave the capped streams as new ones arrive, with the ids going on', async () => {
        await users('alice');
        const old = JSON.stringify({ type: 'message', from: 'bob', at: T0 + 1, text: 'bob: old' });
        expect(await olderAppend(keys.user('alice'), keys.inbox('alice'), old)).toBe(1);
        expect(await olderAppend(keys.lobbyMeta, keys.lobby, `bob ${old.replace('message', 'broadcast')}`)).toBe(1);
        expect(await state.deliver('alice', dm(ev(2)), 2)).toMatchObject({ ok: true, id: 2 });
        expect(await state.appendLobby([], ev(2, 'broadcast'), 2)).toBe(2);
        expect(ids((await state.read('alice', 0, 10)).events)).toEqual([1, 2]);
        expect((await state.read('alice', 0, 10)).events[0]).toMatchObject({ kind: 'message', at: T0 + 1 });
        expect((await state.readLobby(0, 10)).events[0]).toMatchObject({ kind: 'broadcast', at: T0 + 1, skip: ['bob'] });
        expect(await state.deliver('alice', dm(ev(3)), 2)).toMatchObject({ ok: true, id: 3 });
        expect(await state.appendLobby([], ev(3, 'broadcast'), 2)).toBe(3);
        expect(view(await state.read('alice', 0, 10))).toEqual({
          events: [stored(2, flagged(ev(2), true)), stored(3, flagged(ev(3), true))],
          last: 3,
          gap: true,
        });
        expect(await state.readLobby(1, 10)).toEqual({ events: [stored(2, ev(2, 'broadcast')), stored(3, ev(3, 'broadcast'))], last: 3, cursor: 3, gap: false });
        expect(await state.trimmedAfter('alice', cursor(0, 0))).toBe(true);
        expect(await state.trimmedAfter('alice', cursor(1, 1))).toBe(false);
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

      it('expiredCandidates: online users by session start; noteStarted corrects one; markOffline takes it off', async () => {
        await state.markOnline('alice', T0 + 1);
        await state.markOnline('bob', T0 + 5);
        // Activity moves the online score, never the start.
        await state.noteActivity('alice', T0 + 50);
        expect(await state.expiredCandidates(T0 + 4, 10)).toEqual(['alice']);
        expect((await state.expiredCandidates(T0 + 5, 10)).sort()).toEqual(['alice', 'bob']);
        expect(await state.expiredCandidates(T0 + 5, 1)).toHaveLength(1);
        await state.noteStarted('alice', T0 + 9);
        expect(await state.expiredCandidates(T0 + 8, 10)).toEqual(['bob']);
        await state.markOffline('bob', T0 + 60);
        expect(await state.expiredCandidates(T0 + 100, 10)).toEqual(['alice']);
        // noteStarted never adds a user who is not there.
        await state.noteStarted('carol', T0);
        expect(await state.expiredCandidates(T0 + 100, 10)).toEqual(['alice']);
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
        return stored(n, ev(n, 'presence'), [`u${n}`]);
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
        got.forEach((id, n) => expect(byId.get(id)).toEqual(stored(id, ev(n, 'presence'), [`u${n}`])));
      });

      it('readLobby returns the events after a position, in order, with their skip lists and JSON byte for byte', async () => {
        const entries: [string[], NewEvent][] = [
          [['alice'], event({ type: 'presence', user: 'alice', state: 'online', at: T0 + 5 })],
          [['bob', 'carol', 'dave.e', 'x_y-z'], event({ type: 'broadcast', from: 'bob', text: 'héllo wörld ✓ 日本語 🙂', at: T0 + 6 })],
          [['carol'], event({ type: 'broadcast', from: 'carol', text: 'line\nbreak "quoted" \\ back\tslash, a,b c', at: T0 + 2 })],
          [['dave'], event({ type: 'broadcast', from: 'dave', text: '  leading and trailing  ', at: T0 + 7 })],
        ];
        for (const [k, [skip, e]] of entries.entries()) expect(await state.appendLobby(skip, e, BIG_CAP)).toBe(k + 1);
        const all = entries.map(([skip, e], k) => stored(k + 1, e, skip));
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
        const expected = [stored(1, ev('all', 'broadcast'), [])];
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
      type InboxWake = [string, StoredEvent];

      function lobbyRecorder(s: State): LobbyEvent[] {
        const wakes: LobbyEvent[] = [];
        s.onLobby((event) => wakes.push(event));
        return wakes;
      }

      function inboxRecorder(s: State): InboxWake[] {
        const wakes: InboxWake[] = [];
        s.onWake((user, event) => wakes.push([user, event]));
        return wakes;
      }

      it('after watchLobby, every lobby listener of every replica is woken for each append, in order, with the skip list', async () => {
        const other = await replica();
        const mine = lobbyRecorder(state);
        const mineToo = lobbyRecorder(state);
        const theirs = lobbyRecorder(other);
        await state.watchLobby();
        await other.watchLobby();
        const broadcast = event({ type: 'broadcast', from: 'bob', text: '  two  spaces, ünïcödé 🙂 ', at: T0 + 2 });
        expect(await other.appendLobby(['alice'], ev(1, 'presence'), BIG_CAP)).toBe(1);
        expect(await state.appendLobby(['bob', 'carol', 'dave'], broadcast, BIG_CAP)).toBe(2);
        expect(await other.appendLobby(['erin'], ev(3, 'presence'), BIG_CAP)).toBe(3);
        const expected: LobbyEvent[] = [
          stored(1, ev(1, 'presence'), ['alice']),
          stored(2, broadcast, ['bob', 'carol', 'dave']),
          stored(3, ev(3, 'presence'), ['erin']),
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
        await vi.waitFor(() => expect(inbox.at(-1)).toEqual(['marker', stored(1, flagged(ev('m1'), true))]), WAIT);
        expect(lobby).toEqual([]);

        await state.watchLobby();
        expect(await state.appendLobby(['alice'], ev(2, 'presence'), BIG_CAP)).toBe(2);
        await state.deliver('marker', dm(ev('m2')), BIG_CAP);
        await vi.waitFor(() => expect(inbox.at(-1)).toEqual(['marker', stored(2, flagged(ev('m2'), true))]), WAIT);
        await vi.waitFor(() => expect(lobby).toEqual([stored(2, ev(2, 'presence'), ['alice'])]), WAIT);
        expect(inbox).toEqual([
          ['marker', stored(1, flagged(ev('m1'), true))],
          ['marker', stored(2, flagged(ev('m2'), true))],
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
        await vi.waitFor(() => expect(lobby).toEqual([stored(1, ev('marker', 'presence'), ['bob'])]), WAIT);
        expect(inbox).toEqual([['alice', stored(1, flagged(ev(1), true))]]);
      });
    });

    describe('wake-ups', () => {
      type Wake = [string, StoredEvent];

      function recorder(s: State): Wake[] {
        const wakes: Wake[] = [];
        s.onWake((user, event) => wakes.push([user, event]));
        return wakes;
      }

      it('a watched user is woken with (user, event) when an event is appended, the event as stored', async () => {
        await users('alice', 'bob');
        const wakes = recorder(state);
        await state.watch('alice');
        await login('alice');
        expect(await state.deliver('alice', dm(ev('live'), 'bob'), BIG_CAP)).toEqual({ ok: true, id: 1, online: true });
        await vi.waitFor(() => expect(wakes).toEqual([['alice', stored(1, flagged(ev('live'), false))]]), WAIT);
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
              ['alice', stored(1, flagged(ev('stored'), true))],
              ['alice', stored(2, endEvent)],
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
          ['alice', stored(1, flagged(ev(1), true))],
          ['alice', stored(2, flagged(ev(2), true))],
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
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['marker', stored(1, flagged(ev('m1'), true))]), WAIT);
        expect(wakes).toEqual([
          ['alice', stored(1, flagged(ev(1), true))],
          ['marker', stored(1, flagged(ev('m1'), true))],
        ]);

        await state.unwatch('alice');
        await state.deliver('alice', dm(ev(2)), BIG_CAP);
        await state.deliver('marker', dm(ev('m2')), BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['marker', stored(2, flagged(ev('m2'), true))]), WAIT);
        expect(wakes).toEqual([
          ['alice', stored(1, flagged(ev(1), true))],
          ['marker', stored(1, flagged(ev('m1'), true))],
          ['marker', stored(2, flagged(ev('m2'), true))],
        ]);

        // Watching again resumes wake-ups.
        await state.watch('alice');
        await state.deliver('alice', dm(ev(3)), BIG_CAP);
        await vi.waitFor(() => expect(wakes.at(-1)).toEqual(['alice', stored(3, flagged(ev(3), true))]), WAIT);
        expect(wakes).toHaveLength(4);
      });

      it('onResync is not called while the subscriber stays connected', async () => {
        await users('alice');
        let resyncs = 0;
        state.onResync(() => resyncs++);
        const wakes = recorder(state);
        await state.watch('alice');
        await state.deliver('alice', dm(ev(1)), BIG_CAP);
        await vi.waitFor(() => expect(wakes).toEqual([['alice', stored(1, flagged(ev(1), true))]]), WAIT);
        expect(resyncs).toBe(0);
      });

      it('wake-up bodies keep spaces and unicode intact', async () => {
        await login('alice');
        const wakes = recorder(state);
        await state.watch('alice');
        const body = event({ type: 'message', text: '  two  spaces, ünïcödé 🙂 ', at: T0 + 1 });
        await state.deliver('alice', signal(body), BIG_CAP);
        await vi.waitFor(() => expect(wakes).toEqual([['alice', stored(1, body)]]), WAIT);
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
      const wakes: [string, StoredEvent][] = [];
      state.onWake((user, event) => wakes.push([user, event]));
      await state.watch('alice');
      await state.deliver('alice', dm(ev(1)), BIG_CAP);
      await vi.waitFor(() => expect(wakes).toEqual([['alice', stored(1, flagged(ev(1), true))]]), WAIT);
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
      expect(wakes[1][1]).toMatchObject({ kind: 'message', at: ev('again').at, skip: [], json: flagged(ev('again'), true).json });
      expect(resyncs).toBe(1);
    });

    it('the lobby subscription comes back after the subscriber reconnects', async () => {
      let resyncs = 0;
      state.onResync(() => resyncs++);
      const lobby: LobbyEvent[] = [];
      state.onLobby((event) => lobby.push(event));
      await state.watchLobby();
      expect(await state.appendLobby(['alice'], ev(1, 'presence'), BIG_CAP)).toBe(1);
      await vi.waitFor(() => expect(lobby).toEqual([stored(1, ev(1, 'presence'), ['alice'])]), WAIT);

      expect(await store().killSubscribers()).toBeGreaterThanOrEqual(1);
      await vi.waitFor(() => expect(resyncs).toBe(1), { timeout: 10_000, interval: 20 });
      await vi.waitFor(
        async () => {
          await state.appendLobby(['bob'], ev('again', 'presence'), BIG_CAP);
          expect(lobby.length).toBeGreaterThan(1);
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(lobby[1]).toEqual(stored(lobby[1].id, ev('again', 'presence'), ['bob']));
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
        state.onWake((_user, event) => wakes.push(event.id));
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
