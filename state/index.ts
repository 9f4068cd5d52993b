/**
 * The state interface the handlers speak, in the words of SPEC.md: users,
 * sessions, blocks, inbox, lobby, presence, history. One implementation
 * (state/redis.ts) serves ioredis-mock, a real Redis and a Redis Cluster.
 *
 * Times are milliseconds from the injected clock, always passed in: the store
 * never reads its own clock, so a fake clock governs every timing rule.
 */
import type { Cursor } from './cursor.js';

/**
 * An event to store: its encoded JSON, with its kind (the JSON's `type`) and
 * time (its `at`) kept beside it, so that nothing reads the JSON to route or
 * order an event.
 */
export interface NewEvent {
  kind: string;
  /** Milliseconds since the epoch. */
  at: number;
  json: string;
}

/**
 * A stored event of either stream: its id (its position in the stream), its
 * kind and time, who must not get it (lobby events: the subject's blocked
 * users, a broadcaster's blockers; always empty in an inbox), and its JSON.
 */
export interface StoredEvent extends NewEvent {
  id: number;
  skip: readonly string[];
}

/** A lobby event (the same shape; its `skip` may name users). */
export type LobbyEvent = StoredEvent;

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

/**
 * Where a command-line client accepts peers (SPEC section 5), and the SHA-256
 * fingerprint of the certificate it answers with there: the server relays
 * it, and never sees the key behind it.
 */
export interface PeerListener {
  host: string;
  port: number;
  fingerprint: string;
}

export interface LoginRecord {
  hash: string;
  lockedUntil: number;
}

export type OpenSessionResult =
  | {
      ok: true;
      /** Where the new session starts: after what the last session saw of the inbox, at the lobby head given. */
      cursor: Cursor;
      /** Stored events after that were trimmed away (more arrived while away than the backlog keeps). */
      gap: boolean;
    }
  | { ok: false; reason: 'invalid_user' | 'account_blocked' | 'already_logged_in' };

/** Whether a command is admitted on a session (see admitCommand). */
export type Admission = { ok: true } | { ok: false; reason: 'none' | 'ended' | 'rate_limited' };

export interface AdmitOptions {
  /** The command counts as activity: reset the idle timer. */
  activity: boolean;
  /** Command rate limit per second (0 = none) and burst. */
  rate: number;
  burst: number;
}

export interface Delivery {
  /** Sender whose block by the recipient refuses the event ('' = none). */
  from: string;
  event: NewEvent;
  /**
   * A direct message: stored for an offline recipient too, and closed with
   * `"offline":true|false` by the store. Otherwise refused when offline.
   */
  storable: boolean;
}

export type DeliveryResult =
  | { ok: true; id: number; online: boolean }
  | { ok: false; reason: 'invalid_user' | 'blocked' | 'offline' };

/** What an address failed at: a name no account has, or a wrong password for one that exists. */
export type AddressFailure = 'unknown_user' | 'wrong_password';

export interface EndSession {
  /** Only the session with this token ('' = whichever is live). */
  token: string;
  /** Why (stored with the session; see handlers/events.ts EndReason). */
  reason: string;
  now: number;
  /** For timeouts: end it only if its last activity is at or before this. */
  idleSince?: number;
  /** For the session lifetime: end it only if it started at or before this. */
  startedBefore?: number;
  /** The session_end event. */
  event: NewEvent;
}

export type EndSessionResult =
  | { ok: true; id: number }
  | { ok: false; reason: 'none' }
  | { ok: false; reason: 'active'; lastActive: number }
  | { ok: false; reason: 'young'; started: number };

export type PollResult =
  | {
      ok: true;
      /** The cursor the poll read after: the one acknowledged, or the stored one. */
      after: Cursor;
      /** The inbox half of the read. */
      inbox: EventPage;
    }
  | { ok: false; reason: 'none' | 'ended' };

/** What counting one failed login did (see countPasswordFailure). */
export type FailureCount = 'counted' | 'locked' | 'still_locked' | 'none';

/** Wake-ups: "user's inbox grew", with the new event attached. */
export type WakeListener = (user: string, event: StoredEvent) => void;
/** A script ran: its name, how long it took (seconds), whether it succeeded. */
export type ScriptListener = (name: string, seconds: number, ok: boolean) => void;
/** Wake-ups: "the lobby grew", with the new event attached. */
export type LobbyListener = (event: LobbyEvent) => void;

export interface State {
  // users
  addUser(user: string, hash: string): Promise<boolean>;
  setPassword(user: string, hash: string): Promise<boolean>;
  /** Puts `hash` in place of `checked` if that is still the user's hash (a rehash at login); false otherwise. */
  replacePasswordHash(user: string, checked: string, hash: string): Promise<boolean>;
  /**
   * Removes a user and everything of theirs. With `retainMs`, an ended
   * session and its inbox stay readable that long (so its client can read
   * its session_end); they are gone at once otherwise.
   */
  removeUser(user: string, retainMs?: number): Promise<boolean>;
  listUsers(): Promise<string[]>;
  userExists(user: string): Promise<boolean>;
  loginRecord(user: string): Promise<LoginRecord | null>;

  // login guards
  guardAddress(address: string, now: number, rate: number, burst: number, ttlMs: number): Promise<'ok' | 'address_blocked' | 'rate_limited'>;
  /**
   * Counts a failed login against an address or an account at `now`; the
   * `limit`-th in a row locks it until `lockedUntil`. Nothing is counted
   * while it is locked (`still_locked`); `none`: no such account. An
   * address counts its unknown names and its wrong passwords apart, under
   * one lock.
   */
  countAddressFailure(address: string, failure: AddressFailure, limit: number, now: number, lockedUntil: number, ttlMs: number): Promise<FailureCount>;
  countPasswordFailure(user: string, limit: number, now: number, lockedUntil: number): Promise<FailureCount>;

  // sessions
  /** Opens a session whose cursor starts at the user's `seen` inbox position and lobby position `lobbyHead`. */
  openSession(user: string, token: string, now: number, address: string, lobbyHead: number): Promise<OpenSessionResult>;
  /**
   * Admits one command on a session: checks the token, takes one from the
   * session's command-rate bucket and, for activity, resets its idle timer.
   */
  admitCommand(user: string, token: string, now: number, options: AdmitOptions): Promise<Admission>;
  /** The stored cursor of a session, live or ended, or null when the token is not the session's. */
  sessionCursor(user: string, token: string): Promise<{ ended: boolean; cursor: Cursor } | null>;
  /**
   * Where a session would resume: from `cursor` (or its stored cursor), or
   * 'none' (not this session's token), or 'ended' (it ended and its
   * session_end lies at or before that cursor: nothing is left to resume).
   */
  resumable(user: string, token: string, cursor: Cursor | null): Promise<Cursor | 'none' | 'ended'>;
  /** Records activity at `now` and the cursor a connection has written up to, on a live session. */
  recordActivity(user: string, token: string, now: number, cursor: Cursor): Promise<void>;
  /** Records where a live session accepts peer-to-peer connections, and its certificate's fingerprint (`p2p`). */
  setPeerListener(user: string, token: string, listener: PeerListener): Promise<void>;
  endSession(user: string, end: EndSession, cap: number, retainMs: number): Promise<EndSessionResult>;
  /** The peer-to-peer listener a session advertised (`p2p`), or null. */
  peerListener(user: string): Promise<PeerListener | null>;
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
  /** Online users whose session started at or before `startedBefore` (at most `limit`): the lifetime sweep's candidates. */
  expiredCandidates(startedBefore: number, limit: number): Promise<string[]>;
  /** Corrects a candidate's start (a newer session than the set said). */
  noteStarted(user: string, started: number): Promise<void>;

  // blocks
  block(user: string, target: string): Promise<boolean>;
  unblock(user: string, target: string): Promise<boolean>;
  blocked(user: string): Promise<string[]>;
  /** The users who have blocked `user` (the reverse block index). */
  blockedBy(user: string): Promise<string[]>;

  // inbox
  deliver(user: string, delivery: Delivery, cap: number): Promise<DeliveryResult>;
  read(user: string, after: number, limit: number): Promise<EventPage>;
  /** Whether events after `cursor` were trimmed away from either of the user's streams. */
  trimmedAfter(user: string, cursor: Cursor): Promise<boolean>;
  /** Checks the token and reads the inbox half of a long-poll (see PollResult). */
  poll(user: string, token: string, after: Cursor | null, limit: number): Promise<PollResult>;

  // lobby
  /** Appends an event for every online user but those in `skip`; returns its id. */
  appendLobby(skip: string[], event: NewEvent, cap: number): Promise<number>;
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
