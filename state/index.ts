/**
 * The state interface the handlers speak, in the words of SPEC.md: users,
 * sessions, blocks, inbox, lobby, presence, history. One implementation
 * (state/redis.ts) serves ioredis-mock, a real Redis and a Redis Cluster.
 *
 * Times are milliseconds from the injected clock, always passed in: the store
 * never reads its own clock, so a fake clock governs every timing rule.
 */
import type { Cursor } from './cursor.js';

/** An event as stored in an inbox: its id (its position) and its encoded JSON. */
export interface StoredEvent {
  id: number;
  json: string;
}

/** A lobby event: its id (its position in the lobby), who must not get it, its encoded JSON. */
export interface LobbyEvent {
  id: number;
  skip: string[];
  json: string;
}

/** One read of a stream (an inbox or the lobby) after a position. */
export interface Page<E> {
  events: E[];
  /** The newest event id of the stream. */
  last: number;
  /**
   * The position after this page: the last event returned, else the position
   * read after (one beyond the newest event snaps back to the newest id; one
   * before a trimmed backlog moves up to just before the oldest kept event).
   */
  cursor: number;
  /** True when events after the requested position were trimmed away. */
  gap: boolean;
}

export type EventPage = Page<StoredEvent>;
export type LobbyPage = Page<LobbyEvent>;

export interface LoginRecord {
  hash: string;
  lockedUntil: number;
}

export type OpenSessionResult =
  | { ok: true; seen: number; page: { last: number; first: number } }
  | { ok: false; reason: 'invalid_user' | 'account_blocked' | 'already_logged_in' };

export type SessionCheck =
  | { ok: true; p2pHost: string; p2pPort: string; cursor: Cursor }
  | { ok: false; reason: 'ended'; cursor: Cursor; ended: string }
  | { ok: false; reason: 'none' | 'rate_limited' };

export interface SessionCheckOptions {
  /** The command counts as activity: reset the idle timer. */
  touch: boolean;
  /** Command rate limit per second (0 = none) and burst. */
  rate: number;
  burst: number;
  /** Session fields to record with the check (peer-to-peer listener, a TCP connection's cursor). */
  set?: Record<string, string>;
}

export interface Delivery {
  /** Sender whose block by the recipient refuses the event ('' = none). */
  from: string;
  /** The encoded event. */
  event: string;
  /**
   * A direct message: stored for an offline recipient too, and closed with
   * `"offline":true|false` by the store. Otherwise refused when offline.
   */
  storable: boolean;
}

export type DeliveryResult =
  | { ok: true; id: number; online: boolean }
  | { ok: false; reason: 'invalid_user' | 'blocked' | 'offline' };

export interface EndSession {
  /** Only the session with this token ('' = whichever is live). */
  token: string;
  reason: 'logout' | 'timeout';
  now: number;
  /** For timeouts: end it only if its last activity is at or before this. */
  idleSince?: number;
  /** Encoded session_end event. */
  event: string;
}

export type EndSessionResult =
  | { ok: true; id: number }
  | { ok: false; reason: 'none' }
  | { ok: false; reason: 'active'; lastActive: number };

export type PollResult =
  | {
      ok: true;
      /** The cursor the poll read after: the one acknowledged, or the stored one. */
      after: Cursor;
      /** The inbox half of the read. */
      inbox: EventPage;
    }
  | { ok: false; reason: 'none' | 'ended' };

/** Wake-ups: "user's inbox grew to `id`", with the new event attached. */
/** What counting one failed login did (see countPasswordFailure). */
export type FailureCount = 'counted' | 'locked' | 'still_locked' | 'none';

export type WakeListener = (user: string, id: number, json: string) => void;
/** A script ran: its name, how long it took (seconds), whether it succeeded. */
export type ScriptListener = (name: string, seconds: number, ok: boolean) => void;
/** Wake-ups: "the lobby grew", with the new event attached. */
export type LobbyListener = (event: LobbyEvent) => void;

export interface State {
  // users
  addUser(user: string, hash: string): Promise<boolean>;
  setPassword(user: string, hash: string): Promise<boolean>;
  removeUser(user: string): Promise<boolean>;
  listUsers(): Promise<string[]>;
  userExists(user: string): Promise<boolean>;
  loginRecord(user: string): Promise<LoginRecord | null>;

  // login guards
  guardAddress(address: string, now: number, rate: number, burst: number, ttlMs: number): Promise<'ok' | 'address_blocked' | 'rate_limited'>;
  /**
   * Counts a failed login against an address or an account at `now`; the
   * `limit`-th in a row locks it until `lockedUntil`. Nothing is counted
   * while it is locked (`still_locked`); `none`: no such account.
   */
  countAddressFailure(address: string, limit: number, now: number, lockedUntil: number, ttlMs: number): Promise<FailureCount>;
  countPasswordFailure(user: string, limit: number, now: number, lockedUntil: number): Promise<FailureCount>;

  // sessions
  /** Opens a session whose cursor starts at the user's `seen` inbox position and lobby position `lobbyHead`. */
  openSession(user: string, token: string, now: number, address: string, lobbyHead: number): Promise<OpenSessionResult>;
  checkSession(user: string, token: string, now: number, options: SessionCheckOptions): Promise<SessionCheck>;
  endSession(user: string, end: EndSession, cap: number, retainMs: number): Promise<EndSessionResult>;
  /** The peer-to-peer listener a session advertised (`p2p`), or null. */
  peerListener(user: string): Promise<{ host: string; port: string } | null>;
  /**
   * Records a session's cursor (a long-poll read from the stored cursor
   * advanced it), also for an ended session, whose client acknowledges its
   * session_end this way.
   */
  saveCursor(user: string, token: string, cursor: Cursor): Promise<void>;

  // presence and history
  markOnline(user: string, now: number): Promise<void>;
  markOffline(user: string, endedAt: number): Promise<void>;
  online(): Promise<string[]>;
  /** The users among `users` who are online. */
  onlineAmong(users: string[]): Promise<string[]>;
  /** Users whose last session ended at or after `since`. */
  endedSince(since: number): Promise<string[]>;
  /** Online users whose recorded activity is at or before `before` (sweeper candidates). */
  idleCandidates(before: number, limit: number): Promise<string[]>;
  /** Re-records a candidate's real last activity after a sweep found it active. */
  noteActivity(user: string, lastActive: number): Promise<void>;

  // blocks
  block(user: string, target: string): Promise<boolean>;
  unblock(user: string, target: string): Promise<boolean>;
  blocked(user: string): Promise<string[]>;
  /** The users who have blocked `user` (the reverse block index). */
  blockedBy(user: string): Promise<string[]>;

  // inbox
  deliver(user: string, delivery: Delivery, cap: number): Promise<DeliveryResult>;
  read(user: string, after: number, limit: number): Promise<EventPage>;
  /** Checks the token and reads the inbox half of a long-poll (see PollResult). */
  poll(user: string, token: string, after: Cursor | null, limit: number): Promise<PollResult>;

  // lobby
  /** Appends an event for every online user but those in `skip`; returns its id. */
  appendLobby(skip: string[], event: string, cap: number): Promise<number>;
  readLobby(after: number, limit: number): Promise<LobbyPage>;
  /** The newest lobby event id (0 for an empty lobby). */
  lobbyHead(): Promise<number>;

  // private-chat requests
  addPrivateRequest(target: string, from: string, expiresAt: number): Promise<void>;
  takePrivateRequest(target: string, from: string, now: number): Promise<boolean>;
  dropPrivateRequest(target: string, from: string): Promise<void>;

  // wake-ups (live delivery)
  onWake(listener: WakeListener): void;
  onLobby(listener: LobbyListener): void;
  /**
   * Called when wake-ups may have been missed (the subscriber connection was
   * re-established): every listener should read its inbox again.
   */
  onResync(listener: () => void): void;
  /** Called after every script with its name, duration and whether it succeeded (for metrics). */
  onScript(listener: ScriptListener): void;
  watch(user: string): Promise<void>;
  unwatch(user: string): Promise<void>;
  /** Subscribes to the lobby's wake-ups (once per replica). */
  watchLobby(): Promise<void>;

  /**
   * Brings data written by an older version up to date (the reverse block
   * index); safe to run from several replicas at once.
   */
  migrate(): Promise<void>;

  ping(): Promise<boolean>;
  close(): Promise<void>;
}
