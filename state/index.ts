/**
 * The state interface the handlers speak, in the words of SPEC.md: users,
 * sessions, blocks, inbox, presence, history. One implementation
 * (state/redis.ts) serves ioredis-mock, a real Redis and a Redis Cluster.
 *
 * Times are milliseconds from the injected clock, always passed in: the store
 * never reads its own clock, so a fake clock governs every timing rule.
 */

/** An event as stored: its id (= the cursor after it) and its encoded JSON. */
export interface StoredEvent {
  id: number;
  json: string;
}

export interface EventPage {
  events: StoredEvent[];
  /** The newest event id of the inbox. */
  last: number;
  /**
   * The cursor after this page: the last event returned, else the cursor read
   * after (a cursor beyond the newest event snaps back to the newest id; one
   * before a trimmed backlog moves up to just before the oldest kept event).
   */
  cursor: number;
  /** True when events after the requested cursor were trimmed away. */
  gap: boolean;
}

export interface LoginRecord {
  hash: string;
  lockedUntil: number;
}

export type OpenSessionResult =
  | { ok: true; seen: number; page: { last: number; first: number } }
  | { ok: false; reason: 'invalid_user' | 'account_blocked' | 'already_logged_in' };

export type SessionCheck =
  | { ok: true; p2pHost: string; p2pPort: string; cursor: number }
  | { ok: false; reason: 'ended'; cursor: number; ended: string }
  | { ok: false; reason: 'none' | 'rate_limited' };

export interface SessionCheckOptions {
  /** The command counts as activity: reset the idle timer. */
  touch: boolean;
  /** Command rate limit per second (0 = none) and burst. */
  rate: number;
  burst: number;
  /** Session fields to record with the check (peer-to-peer listener, TCP cursor). */
  set?: Record<string, string>;
}

export interface Delivery {
  /** Sender whose block by the recipient refuses the event ('' = none). */
  from: string;
  /** Encoded event for an online recipient. */
  online: string;
  /** Encoded event stored for an offline recipient; omitted = not stored. */
  offline?: string;
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
  | ({ ok: true } & EventPage)
  | { ok: false; reason: 'none' | 'ended' };

/** Wake-ups: "user's inbox grew to `id`", with the new event attached. */
export type WakeListener = (user: string, id: number, json: string) => void;

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
  countAddressFailure(address: string, limit: number, lockedUntil: number, ttlMs: number): Promise<boolean>;
  countPasswordFailure(user: string, limit: number, lockedUntil: number): Promise<boolean>;

  // sessions
  openSession(user: string, token: string, now: number, address: string): Promise<OpenSessionResult>;
  checkSession(user: string, token: string, now: number, options: SessionCheckOptions): Promise<SessionCheck>;
  endSession(user: string, end: EndSession, cap: number, retainMs: number): Promise<EndSessionResult>;

  // presence and history
  markOnline(user: string, now: number): Promise<void>;
  markOffline(user: string, endedAt: number): Promise<void>;
  online(): Promise<string[]>;
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
  /** The users among `candidates` who have blocked `user`. */
  blockersOf(user: string, candidates: string[]): Promise<Set<string>>;

  // inbox
  deliver(user: string, delivery: Delivery, cap: number): Promise<DeliveryResult>;
  read(user: string, after: number, limit: number): Promise<EventPage>;
  poll(user: string, token: string, after: number | null, limit: number): Promise<PollResult>;

  // private-chat requests
  addPrivateRequest(target: string, from: string, expiresAt: number): Promise<void>;
  takePrivateRequest(target: string, from: string, now: number): Promise<boolean>;
  dropPrivateRequest(target: string, from: string): Promise<void>;

  // wake-ups (live delivery)
  onWake(listener: WakeListener): void;
  /**
   * Called when wake-ups may have been missed (the subscriber connection was
   * re-established): every listener should read its inbox again.
   */
  onResync(listener: () => void): void;
  watch(user: string): Promise<void>;
  unwatch(user: string): Promise<void>;

  ping(): Promise<boolean>;
  close(): Promise<void>;
}
