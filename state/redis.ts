import { hash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { Cursor } from './cursor.js';
import { keys, wakeChannelUser } from './keys.js';
import { loadScripts } from './scripts.js';
import type {
  AddressFailure,
  Admission,
  AdmitOptions,
  Delivery,
  DeliveryResult,
  EndSession,
  EndSessionResult,
  EventPage,
  FailureCount,
  LobbyListener,
  LobbyPage,
  LoginRecord,
  NewEvent,
  OpenSessionResult,
  PeerListener,
  PollResult,
  ScriptListener,
  State,
  StoredEvent,
  WakeListener,
} from './index.js';

type Client = Redis | Cluster;
type Reply = (string | number)[];

/** The state interface on an ioredis client (real, cluster or ioredis-mock). */
export class RedisState implements State {
  private readonly listeners: WakeListener[] = [];
  private readonly lobbyListeners: LobbyListener[] = [];
  private readonly scriptListeners: ScriptListener[] = [];
  private readonly resyncListeners: (() => void)[] = [];

  /**
   * @param redis commands and scripts
   * @param subscriber a second connection, used only for wake-up pub/sub
   * @param options.sharded wake-ups on sharded pub/sub (a Redis Cluster)
   */
  constructor(
    private readonly redis: Client,
    private readonly subscriber: Client,
    private readonly options: { sharded?: boolean } = {},
  ) {
    for (const script of loadScripts()) {
      const lua = options.sharded ? shardedPublish(script.name, script.lua) : script.lua;
      redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua });
    }
    subscriber.on(options.sharded ? 'smessage' : 'message', (channel: string, message: string) => {
      const space = message.indexOf(' ');
      if (space < 0) return;
      const event = storedEvent(Number(message.slice(0, space)), message.slice(space + 1));
      if (channel === keys.lobbyWake) {
        for (const listener of this.lobbyListeners) listener(event);
        return;
      }
      const user = wakeChannelUser(channel);
      if (user === null) return;
      for (const listener of this.listeners) listener(user, event);
    });
    // ioredis resubscribes by itself after a reconnect; what was published
    // while it was away is gone, so listeners catch up by reading.
    const resync = () => {
      for (const listener of this.resyncListeners) listener();
    };
    if (options.sharded) {
      // A Cluster keeps one sharded subscriber connection per master. One
      // that drops is replaced ('-subscriber'), all of them after the whole
      // cluster connection was lost ('close'); 'subscribersReady' follows
      // once the replacements are connected and resubscribing.
      let lost = false;
      subscriber.on('-subscriber', () => (lost = true));
      subscriber.on('close', () => (lost = true));
      subscriber.on('subscribersReady', () => {
        if (!lost) return;
        lost = false;
        resync();
      });
    } else {
      let connectedBefore = false;
      subscriber.on('ready', () => {
        if (connectedBefore) resync();
        connectedBefore = true;
      });
    }
  }

  private async run(name: string, keyList: string[], args: (string | number)[]): Promise<unknown> {
    const command = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name];
    if (this.scriptListeners.length === 0) return command.call(this.redis, ...keyList, ...args);
    const started = performance.now();
    let ok = false;
    try {
      const result = await command.call(this.redis, ...keyList, ...args);
      ok = true;
      return result;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      for (const listener of this.scriptListeners) listener(name, seconds, ok);
    }
  }

  // users

  async addUser(user: string, hash: string): Promise<boolean> {
    const [created] = await Promise.all([
      this.redis.hsetnx(keys.user(user), 'hash', hash),
      this.redis.sadd(keys.users, user),
    ]);
    // A user removed a moment ago may have left an ended session and its
    // inbox to expire (removeUser's retainMs): the new user starts clean.
    if (created === 1) await this.redis.del(keys.session(user), keys.inbox(user));
    return created === 1;
  }

  async setPassword(user: string, hash: string): Promise<boolean> {
    return (await this.run('setPassword', [keys.user(user)], [hash])) === 1;
  }

  async replacePasswordHash(user: string, checked: string, hash: string): Promise<boolean> {
    return (await this.run('replacePasswordHash', [keys.user(user)], [checked, hash])) === 1;
  }

  async removeUser(user: string, retainMs = 0): Promise<boolean> {
    // The reverse block index names the user in other users' sets: take it
    // out there too, so a user added again later starts with no blocks.
    const [blocks, blockedBy] = await Promise.all([this.blocked(user), this.blockedBy(user)]);
    await Promise.all([
      ...blocks.map((target) => this.redis.srem(keys.blockedBy(target), user)),
      ...blockedBy.map((blocker) => this.redis.srem(keys.blocks(blocker), user)),
    ]);
    const ended = retainMs > 0 && (await this.redis.hexists(keys.session(user), 'ended')) === 1;
    const [removed] = await Promise.all([
      this.redis.del(
        keys.user(user),
        ...(ended ? [] : [keys.session(user), keys.inbox(user)]),
        keys.blocks(user),
        keys.blockedBy(user),
        keys.privateRequests(user),
      ),
      ...(ended ? [this.redis.pexpire(keys.session(user), retainMs), this.redis.pexpire(keys.inbox(user), retainMs)] : []),
      this.redis.srem(keys.users, user),
      this.redis.zrem(keys.online, user),
      this.redis.zrem(keys.lastSeen, user),
    ]);
    return removed > 0;
  }

  async listUsers(): Promise<string[]> {
    return (await this.redis.smembers(keys.users)).sort();
  }

  async userExists(user: string): Promise<boolean> {
    return (await this.redis.exists(keys.user(user))) === 1;
  }

  async loginRecord(user: string): Promise<LoginRecord | null> {
    const [hash, lockedUntil] = await this.redis.hmget(keys.user(user), 'hash', 'lockedUntil');
    if (!hash) return null;
    return { hash, lockedUntil: Number(lockedUntil ?? 0) };
  }

  // login guards

  async guardAddress(address: string, now: number, rate: number, burst: number, ttlMs: number) {
    return (await this.run('guardAddress', [keys.address(address)], [now, rate, burst, ttlMs])) as
      | 'ok'
      | 'address_blocked'
      | 'rate_limited';
  }

  async countAddressFailure(address: string, failure: AddressFailure, limit: number, now: number, lockedUntil: number, ttlMs: number): Promise<FailureCount> {
    const field = failure === 'unknown_user' ? 'fails' : 'passwordFails';
    return (await this.run('countFailure', [keys.address(address)], [limit, now, lockedUntil, ttlMs, 0, field])) as FailureCount;
  }

  async countPasswordFailure(user: string, limit: number, now: number, lockedUntil: number): Promise<FailureCount> {
    return (await this.run('countFailure', [keys.user(user)], [limit, now, lockedUntil, '', 1, 'fails'])) as FailureCount;
  }

  // sessions

  async openSession(user: string, token: string, now: number, address: string, lobbyHead: number): Promise<OpenSessionResult> {
    const r = (await this.run(
      'openSession',
      [keys.user(user), keys.session(user), keys.inbox(user)],
      [now, digest(token), address, lobbyHead],
    )) as Reply;
    if (r[0] !== 'ok') return { ok: false, reason: r[0] as 'invalid_user' | 'account_blocked' | 'already_logged_in' };
    const seen = Number(r[1]);
    const last = Number(r[2]);
    const first = last - Number(r[3]) + 1;
    return { ok: true, cursor: new Cursor(seen, lobbyHead), gap: last > seen && first > seen + 1 };
  }

  async admitCommand(user: string, token: string, now: number, o: AdmitOptions): Promise<Admission> {
    const status = String(await this.run('session', [keys.session(user)], [digest(token), now, o.activity ? 1 : 0, o.rate, o.burst]));
    return status === 'ok' ? { ok: true } : { ok: false, reason: status as 'none' | 'ended' | 'rate_limited' };
  }

  async sessionCursor(user: string, token: string): Promise<{ ended: boolean; cursor: Cursor } | null> {
    const [stored, ended, inbox, lobby] = await this.redis.hmget(keys.session(user), 'token', 'ended', 'cursorInbox', 'cursorLobby');
    if (stored !== digest(token)) return null;
    return { ended: ended !== null, cursor: new Cursor(Number(inbox ?? 0), Number(lobby ?? 0)) };
  }

  async resumable(user: string, token: string, cursor: Cursor | null): Promise<Cursor | 'none' | 'ended'> {
    const [stored, ended, inbox, lobby, endId] = await this.redis.hmget(keys.session(user), 'token', 'ended', 'cursorInbox', 'cursorLobby', 'seq');
    if (stored !== digest(token)) return 'none';
    const from = cursor ?? new Cursor(Number(inbox ?? 0), Number(lobby ?? 0));
    if (ended !== null && (endId === null || from.inbox >= Number(endId))) return 'ended';
    return from;
  }

  async recordActivity(user: string, token: string, now: number, cursor: Cursor): Promise<void> {
    const fields = ['active', now, 'cursorInbox', cursor.inbox, 'cursorLobby', cursor.lobby];
    await this.run('setSessionFields', [keys.session(user)], [digest(token), ...fields]);
  }

  async setPeerListener(user: string, token: string, { host, port, fingerprint }: PeerListener): Promise<void> {
    await this.run('setSessionFields', [keys.session(user)], [digest(token), 'p2pHost', host, 'p2pPort', port, 'p2pFingerprint', fingerprint]);
  }

  async endSession(user: string, end: EndSession, cap: number, retainMs: number): Promise<EndSessionResult> {
    const r = (await this.run(
      'endSession',
      [keys.user(user), keys.session(user), keys.inbox(user), keys.privateRequests(user), keys.wake(user)],
      [end.token === '' ? '' : digest(end.token), end.reason, end.now, end.idleSince ?? '', entry(end.event, []), cap, retainMs, end.startedBefore ?? ''],
    )) as Reply;
    if (r[0] === 'ok') return { ok: true, id: Number(r[1]) };
    if (r[0] === 'active') return { ok: false, reason: 'active', lastActive: Number(r[1]) };
    if (r[0] === 'young') return { ok: false, reason: 'young', started: Number(r[1]) };
    return { ok: false, reason: 'none' };
  }

  async peerListener(user: string): Promise<PeerListener | null> {
    // A listener recorded before fingerprints were (an older replica) is no listener: nothing could verify it.
    const [host, port, fingerprint] = await this.redis.hmget(keys.session(user), 'p2pHost', 'p2pPort', 'p2pFingerprint');
    return host && port && fingerprint ? { host, port: Number(port), fingerprint } : null;
  }

  async saveCursor(user: string, token: string, cursor: Cursor): Promise<void> {
    await this.run('saveCursor', [keys.session(user)], [digest(token), cursor.inbox, cursor.lobby]);
  }

  // presence and history

  async markOnline(user: string, now: number): Promise<void> {
    await Promise.all([this.redis.zadd(keys.online, now, user), this.redis.zadd(keys.started, now, user)]);
  }

  async markOffline(user: string, endedAt: number): Promise<void> {
    await this.run('markOffline', [keys.online, keys.started, keys.lastSeen], [user, endedAt]);
  }

  async online(): Promise<string[]> {
    return this.redis.zrange(keys.online, 0, -1);
  }

  async onlineAmong(users: string[]): Promise<string[]> {
    if (users.length === 0) return [];
    const scores = await this.redis.zmscore(keys.online, ...users);
    return users.filter((_u, k) => scores[k] !== null);
  }

  async endedSince(since: number): Promise<string[]> {
    return this.redis.zrangebyscore(keys.lastSeen, since, '+inf');
  }

  async idleCandidates(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(keys.online, '-inf', before, 'LIMIT', 0, limit);
  }

  async expiredCandidates(startedBefore: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(keys.started, '-inf', startedBefore, 'LIMIT', 0, limit);
  }

  async noteStarted(user: string, started: number): Promise<void> {
    await this.redis.zadd(keys.started, 'XX', started, user);
  }

  async noteActivity(user: string, lastActive: number): Promise<void> {
    await this.redis.zadd(keys.online, 'XX', lastActive, user);
  }

  // blocks

  // A block lives in two sets in two hash slots: the blocker's (checked when
  // a message is delivered) and the reverse index (skipped recipients of a
  // broadcast, whoelse). The reverse entry is written whatever the first
  // answer, so a repeated command repairs a half-done one.

  async block(user: string, target: string): Promise<boolean> {
    const [added] = await Promise.all([this.redis.sadd(keys.blocks(user), target), this.redis.sadd(keys.blockedBy(target), user)]);
    return added === 1;
  }

  async unblock(user: string, target: string): Promise<boolean> {
    const [removed] = await Promise.all([this.redis.srem(keys.blocks(user), target), this.redis.srem(keys.blockedBy(target), user)]);
    return removed === 1;
  }

  async blocked(user: string): Promise<string[]> {
    return this.redis.smembers(keys.blocks(user));
  }

  async blockedBy(user: string): Promise<string[]> {
    return this.redis.smembers(keys.blockedBy(user));
  }

  // inbox

  async deliver(user: string, d: Delivery, cap: number): Promise<DeliveryResult> {
    const r = (await this.run(
      'deliver',
      [keys.user(user), keys.session(user), keys.inbox(user), keys.blocks(user), keys.wake(user)],
      [d.from, entryHead(d.event, []), d.event.json, d.storable ? 1 : 0, cap],
    )) as Reply;
    if (r[0] === 'ok') return { ok: true, id: Number(r[1]), online: Number(r[2]) === 1 };
    return { ok: false, reason: r[0] as 'invalid_user' | 'blocked' | 'offline' };
  }

  async read(user: string, after: number, limit: number): Promise<EventPage> {
    const r = (await this.run('read', [keys.user(user), keys.inbox(user)], [after, limit])) as Reply;
    return page(r, 0);
  }

  async trimmedAfter(user: string, cursor: Cursor): Promise<boolean> {
    const [inbox, lobby] = await Promise.all([this.read(user, cursor.inbox, 0), this.readLobby(cursor.lobby, 0)]);
    return inbox.gap || lobby.gap;
  }

  async poll(user: string, token: string, after: Cursor | null, limit: number): Promise<PollResult> {
    const r = (await this.run(
      'poll',
      [keys.session(user), keys.user(user), keys.inbox(user)],
      [digest(token), after === null ? '' : after.inbox, after === null ? '' : after.lobby, limit],
    )) as Reply;
    if (r[0] !== 'ok') return { ok: false, reason: r[0] as 'none' | 'ended' };
    return { ok: true, after: new Cursor(Number(r[1]), Number(r[2])), inbox: page(r, 3) };
  }

  // lobby

  async appendLobby(skip: string[], event: NewEvent, cap: number): Promise<number> {
    return Number(await this.run('appendLobby', [keys.lobbyMeta, keys.lobby, keys.lobbyWake], [entry(event, skip), cap]));
  }

  async readLobby(after: number, limit: number): Promise<LobbyPage> {
    const r = (await this.run('read', [keys.lobbyMeta, keys.lobby], [after, limit])) as Reply;
    return page(r, 0);
  }

  async lobbyHead(): Promise<number> {
    return Number((await this.redis.hget(keys.lobbyMeta, 'seq')) ?? 0);
  }

  // private-chat requests

  async addPrivateRequest(target: string, from: string, expiresAt: number): Promise<void> {
    await this.redis.hset(keys.privateRequests(target), from, expiresAt);
  }

  async takePrivateRequest(target: string, from: string, now: number): Promise<boolean> {
    return (await this.run('takePrivateRequest', [keys.privateRequests(target)], [from, now])) === 1;
  }

  async dropPrivateRequest(target: string, from: string): Promise<void> {
    await this.redis.hdel(keys.privateRequests(target), from);
  }

  // wake-ups

  onWake(listener: WakeListener): void {
    this.listeners.push(listener);
  }

  onLobby(listener: LobbyListener): void {
    this.lobbyListeners.push(listener);
  }

  onScript(listener: ScriptListener): void {
    this.scriptListeners.push(listener);
  }

  onResync(listener: () => void): void {
    this.resyncListeners.push(listener);
  }

  async watch(user: string): Promise<void> {
    await this.subscribe(keys.wake(user));
  }

  async unwatch(user: string): Promise<void> {
    if (this.options.sharded) await this.subscriber.sunsubscribe(keys.wake(user));
    else await this.subscriber.unsubscribe(keys.wake(user));
  }

  async watchLobby(): Promise<void> {
    await this.subscribe(keys.lobbyWake);
  }

  private async subscribe(channel: string): Promise<void> {
    if (this.options.sharded) await this.subscriber.ssubscribe(channel);
    else await this.subscriber.subscribe(channel);
  }

  async migrate(): Promise<void> {
    // Version 2 added the reverse block index; build it from the blockers' sets.
    if ((await this.redis.get(keys.schema)) === '2') return;
    // In batches: one round trip per batch, not per user, and a bounded
    // number of commands in flight however many users there are.
    const users = await this.redis.smembers(keys.users);
    for (let k = 0; k < users.length; k += 256) {
      const batch = users.slice(k, k + 256);
      const blocks = await Promise.all(batch.map((user) => this.blocked(user)));
      await Promise.all(batch.flatMap((user, j) => blocks[j].map((target) => this.redis.sadd(keys.blockedBy(target), user))));
    }
    await this.redis.set(keys.schema, '2');
  }

  async ping(): Promise<boolean> {
    return (await this.redis.ping()) === 'PONG';
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
    this.redis.disconnect();
  }
}

/**
 * A script with its wake-ups on sharded pub/sub: SPUBLISH sends a message
 * only to the node serving the channel's slot (the slot of the keys the
 * script touches), where PUBLISH on a cluster is copied to every node.
 */
function shardedPublish(name: string, lua: string): string {
  const swapped = lua.replaceAll("redis.call('PUBLISH',", "redis.call('SPUBLISH',");
  if (/\bPUBLISH\b/.test(swapped)) throw new Error(`script ${name}: a PUBLISH the sharded form does not replace`);
  return swapped;
}

/**
 * How an event is stored in either stream (an inbox or the lobby), one list
 * entry: `<kind> <at> <skip> <json>`, where `skip` is comma-separated user
 * names (empty in an inbox). The fields before the JSON are what delivery
 * routes and orders by; JSON never contains a raw newline, so entries can be
 * joined by newlines on the way out of a script.
 */
function entryHead(event: NewEvent, skip: readonly string[]): string {
  return `${event.kind} ${event.at} ${skip.join(',')}`;
}

function entry(event: NewEvent, skip: readonly string[]): string {
  return `${entryHead(event, skip)} ${event.json}`;
}

const noSkip: readonly string[] = Object.freeze([]);

/** A stored entry (see `entry`) with its id. */
function storedEvent(id: number, text: string): StoredEvent {
  const a = text.indexOf(' ');
  if (text.startsWith('{') || text.charAt(a + 1) === '{') return olderEntry(id, text, a);
  const b = text.indexOf(' ', a + 1);
  const c = text.indexOf(' ', b + 1);
  return {
    id,
    kind: text.slice(0, a),
    at: Number(text.slice(a + 1, b)),
    skip: c === b + 1 ? noSkip : text.slice(b + 1, c).split(','),
    json: text.slice(c + 1),
  };
}

/**
 * An entry written before kind and time were stored beside the JSON: an
 * inbox entry that is only the JSON, or a lobby entry `<skip> <json>`. Read
 * once from the JSON itself; such entries leave the capped streams as new
 * events arrive.
 */
function olderEntry(id: number, text: string, space: number): StoredEvent {
  const bare = text.startsWith('{');
  const json = bare ? text : text.slice(space + 1);
  const skip = bare || space === 0 ? noSkip : text.slice(0, space).split(',');
  let fields: { type?: unknown; at?: unknown } = {};
  try {
    fields = JSON.parse(json) as typeof fields;
  } catch {
    // Not JSON: passed on as it is, ordered first.
  }
  return { id, kind: String(fields.type ?? ''), at: Number(fields.at ?? 0), skip, json };
}

/** Turns a read reply `{seq, from, gap, count, joined}` (after `offset` status fields) into events. */
function page(r: Reply, offset: number): EventPage {
  const last = Number(r[offset]);
  const from = Number(r[offset + 1]);
  const count = Number(r[offset + 3]);
  const bodies = count > 0 ? String(r[offset + 4]).split('\n') : [];
  return {
    events: bodies.map((text, k) => storedEvent(from + k, text)),
    last,
    cursor: from + bodies.length - 1,
    gap: Number(r[offset + 2]) === 1,
  };
}

/**
 * What the store keeps of a session token: its SHA-256. A token is 128
 * random bits, so a plain hash cannot be reversed or guessed, and a copy of
 * the store (a backup, a replica, MONITOR) holds nothing a client could
 * present. Every token a method is given is hashed here, at the store's
 * edge; the scripts compare hashes.
 */
function digest(token: string): string {
  return hash('sha256', token, 'base64url');
}
