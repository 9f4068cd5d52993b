import type { Cursor } from '../state/cursor.js';
import type { State } from '../state/index.js';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface Config {
  /** Seconds an account or address stays locked after too many failures. */
  blockDuration: number;
  /** Seconds without a valid command before a session is logged out. */
  timeout: number;
  /** Seconds a session lasts at most, active or not (0 = no limit). */
  sessionLifetime: number;
  /** Failed logins in a row that lock an account (and unknown names an address). */
  loginFailures: number;
  /**
   * Wrong passwords, for any accounts, from one client address (an IPv6 /64)
   * that lock the address (0 = not counted): password spraying.
   */
  addressFailures: number;
  /** scrypt cost N of the hashes this server makes. */
  passwordCost: number;
  /** Remake a hash made at a lower cost at its user's next successful login. */
  rehashPasswords: boolean;
  maxMessageLength: number;
  maxLineBytes: number;
  maxBodyBytes: number;
  /** Commands per second per session (0 = no limit) and burst. */
  commandRate: number;
  commandBurst: number;
  /** Login attempts per second per client address (0 = no limit) and burst. */
  loginRate: number;
  loginBurst: number;
  /** Events kept per inbox; older ones are trimmed. */
  backlog: number;
  /** Events kept in the lobby (presence, broadcasts); older ones are trimmed. */
  lobbyBacklog: number;
  /** Seconds a private-chat request waits for an answer. */
  privateRequestTtl: number;
}

export const defaultConfig: Config = {
  blockDuration: 60,
  timeout: 120,
  sessionLifetime: 24 * 60 * 60,
  loginFailures: 3,
  addressFailures: 10,
  passwordCost: 2 ** 17,
  rehashPasswords: true,
  maxMessageLength: 1000,
  maxLineBytes: 8192,
  maxBodyBytes: 16384,
  commandRate: 20,
  commandBurst: 40,
  loginRate: 10,
  loginBurst: 50,
  backlog: 10000,
  lobbyBacklog: 10000,
  privateRequestTtl: 120,
};

export interface Passwords {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** The hash was made at a lower cost than `hash` makes now. */
  outdated(hash: string): boolean;
}

/** What every handler may use: side effects go through `state` only. */
export interface Context {
  state: State;
  clock: Clock;
  config: Config;
  passwords: Passwords;
  /** A new unguessable secret (session tokens, private-chat tokens). */
  secret(): string;
  /** Where failures are reported (the transports' logger); optional in tests. */
  log?: Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Where handlers and transports report; an `err` field carries an Error (logged with its stack). */
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** Who is calling: the transport fills this in from its connection or request. */
export interface Caller {
  /** The client's address (after PROXY protocol / X-Forwarded-For, when trusted). */
  address: string;
  /** The session this connection or request carries, if any. */
  session?: { user: string; token: string };
  /** Set by a transport whose connection holds its session (TCP); see BoundSession. */
  bound?: BoundSession;
}

/**
 * A connection bound to its session after login or resume, that closes on
 * the session's own session_end event: it learns that the session ended from
 * its stream, so its commands skip the token check in the store. Its command
 * rate limit lives here, in the connection, and its activity is recorded at
 * most once a second (with the cursor it has written up to).
 */
export interface BoundSession {
  /** The command-rate bucket: tokens left, and when they were counted (ms). */
  tokens: number;
  tokensAt: number;
  /** When activity was last recorded (ms); 0 = never. */
  touchedAt: number;
  /** The cursor the connection has written events up to. */
  cursor(): Cursor;
}

/** A reply: the JSON object of SPEC section 4, sent back for one command. */
export interface Reply {
  type: 'reply';
  cmd: string;
  ok: boolean;
  error?: string;
  text: string;
  /** What the transport does beside sending it; never sent (see `wireReply`). */
  effects?: Effects;
  [field: string]: unknown;
}

/**
 * What a reply asks of the transport that sends it, as fields, so that no
 * transport reads meaning out of a reply's text or its verb.
 */
export interface Effects {
  /** The reply opens or resumes this session: the connection holds it and streams its events from `cursor`. */
  attach?: { user: string; token: string; cursor: Cursor };
  /** A failed login attempt: a connection counts them and closes at the limit (SPEC section 2). */
  failedLogin?: boolean;
  /** The connection closes after this reply. */
  close?: boolean;
  /** What goes on the wire instead of the reply object (ping's `{"type":"pong"}`). */
  answer?: Record<string, unknown>;
}

/** A session as a handler sees it, after the registry checked the token. */
export interface SessionInfo {
  user: string;
  token: string;
}

export interface Handler {
  (ctx: Context, args: string[], session: SessionInfo | null, caller: Caller): Promise<Reply>;
}
