import { Cursor } from '../state/cursor.js';
import { takeToken } from './bucket.js';
import { fail, texts } from './replies.js';
import type { BoundSession, Caller, Context, Handler, Reply, SessionInfo } from './types.js';
import { acceptprivate } from './commands/acceptprivate.js';
import { block } from './commands/block.js';
import { broadcast } from './commands/broadcast.js';
import { declineprivate } from './commands/declineprivate.js';
import { login } from './commands/login.js';
import { logout } from './commands/logout.js';
import { message } from './commands/message.js';
import { p2p } from './commands/p2p.js';
import { ping } from './commands/ping.js';
import { privateMessage, stopprivate } from './commands/private.js';
import { resume } from './commands/resume.js';
import { startprivate } from './commands/startprivate.js';
import { touch } from './commands/touch.js';
import { unblock } from './commands/unblock.js';
import { whoelse } from './commands/whoelse.js';
import { whoelsesince } from './commands/whoelsesince.js';

/** Splits the rest of a command line into arguments, or null for a usage error. */
type ArgShape = (rest: string) => string[] | null;

const none: ArgShape = (rest) => (rest === '' ? [] : null);
const word: ArgShape = (rest) => (/^[^ ]+$/.test(rest) ? [rest] : null);
/** One word, then free text (which may contain spaces) up to the end of the line. */
const wordAndText: ArgShape = (rest) => {
  const m = /^([^ ]+) (.+)$/s.exec(rest);
  return m && m[2].trim() !== '' ? [m[1], m[2]] : null;
};
const text: ArgShape = (rest) => (rest.trim() === '' ? null : [rest]);
const seconds: ArgShape = (rest) => (/^\d{1,15}$/.test(rest) ? [rest] : null);
const wordAndOptionalWord: ArgShape = (rest) => (/^[^ ]+( [^ ]+)?$/.test(rest) ? rest.split(' ') : null);
const twoOrThreeWords: ArgShape = (rest) => (/^[^ ]+ [^ ]+( [^ ]+)?$/.test(rest) ? rest.split(' ') : null);
/** A token, then optionally a cursor the server handed out. */
const tokenAndOptionalCursor: ArgShape = (rest) => {
  const args = wordAndOptionalWord(rest);
  return args && (args.length === 1 || Cursor.parse(args[1])) ? args : null;
};

export interface CommandRow {
  verb: string;
  /** The command's synopsis, also its usage text. */
  synopsis: string;
  args: ArgShape;
  /** Needs a live session (checked, with the command rate limit, before the handler runs). */
  session: boolean;
  /** Resets the inactivity timer (SPEC section 2). */
  activity: boolean;
  /**
   * A person types it (the CLI and the web client pass it on as typed);
   * otherwise a client sends it by itself (login, resume, p2p, touch, ping,
   * the answers to a private-chat request).
   */
  typed: boolean;
  handler: Handler;
}

/**
 * The command table: every command the server understands, in one place.
 * The dispatcher applies its columns once, for all commands.
 */
export const commands: readonly CommandRow[] = [
  { verb: 'login', synopsis: 'login <username> <password>', args: wordAndText, session: false, activity: false, typed: false, handler: login },
  { verb: 'resume', synopsis: 'resume <token> [<cursor>]', args: tokenAndOptionalCursor, session: false, activity: false, typed: false, handler: resume },
  { verb: 'message', synopsis: 'message <user> <text>', args: wordAndText, session: true, activity: true, typed: true, handler: message },
  { verb: 'broadcast', synopsis: 'broadcast <text>', args: text, session: true, activity: true, typed: true, handler: broadcast },
  { verb: 'whoelse', synopsis: 'whoelse', args: none, session: true, activity: true, typed: true, handler: whoelse },
  { verb: 'whoelsesince', synopsis: 'whoelsesince <seconds>', args: seconds, session: true, activity: true, typed: true, handler: whoelsesince },
  { verb: 'block', synopsis: 'block <user>', args: word, session: true, activity: true, typed: true, handler: block },
  { verb: 'unblock', synopsis: 'unblock <user>', args: word, session: true, activity: true, typed: true, handler: unblock },
  { verb: 'logout', synopsis: 'logout', args: none, session: true, activity: true, typed: true, handler: logout },
  { verb: 'startprivate', synopsis: 'startprivate <user>', args: word, session: true, activity: true, typed: true, handler: startprivate },
  { verb: 'acceptprivate', synopsis: 'acceptprivate <user>', args: word, session: true, activity: true, typed: false, handler: acceptprivate },
  { verb: 'declineprivate', synopsis: 'declineprivate <user>', args: word, session: true, activity: true, typed: false, handler: declineprivate },
  { verb: 'private', synopsis: 'private <user> <text>', args: wordAndText, session: true, activity: false, typed: true, handler: privateMessage },
  { verb: 'stopprivate', synopsis: 'stopprivate <user>', args: word, session: true, activity: false, typed: true, handler: stopprivate },
  { verb: 'p2p', synopsis: 'p2p [<host>] <port> <fingerprint>', args: twoOrThreeWords, session: true, activity: false, typed: false, handler: p2p },
  { verb: 'touch', synopsis: 'touch', args: none, session: true, activity: true, typed: false, handler: touch },
  { verb: 'ping', synopsis: 'ping', args: none, session: false, activity: false, typed: false, handler: ping },
];

/**
 * The long-poll (`GET /events`): not a command line, but its replies and
 * metrics name it like one.
 */
export const pollVerb = 'events';

const byVerb = new Map(commands.map((row) => [row.verb, row]));

/**
 * Control characters (C0, DEL and the 8-bit C1 set, whose U+009B starts a
 * terminal escape) and NUL never travel to other users.
 */
const forbidden = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Runs one command line for a caller and returns its reply. Never throws: a
 * state store failure becomes an `unavailable` reply.
 */
export function dispatch(ctx: Context, caller: Caller, line: string): Promise<Reply> {
  const space = line.indexOf(' ');
  const verb = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? '' : line.slice(space + 1);
  if (Buffer.byteLength(line) > ctx.config.maxLineBytes) {
    return Promise.resolve(fail(verb, 'too_long', texts.lineTooLong(ctx.config.maxLineBytes)));
  }
  if (forbidden.test(line) || !line.isWellFormed()) return Promise.resolve(fail(verb, 'invalid_command', texts.invalidCharacters));
  const row = byVerb.get(verb);
  if (!row) return Promise.resolve(fail(verb, 'invalid_command', texts.invalidCommand));
  // Not an async function itself: the command's promise is returned as it is.
  return execute(ctx, caller, row, row.args(rest));
}

/**
 * Runs a command whose arguments arrive already apart (the fields of a JSON
 * or form body), under the same rules as a command line.
 */
export async function dispatchArgs(ctx: Context, caller: Caller, verb: string, args: string[]): Promise<Reply> {
  const row = byVerb.get(verb);
  if (!row) return fail(verb, 'invalid_command', texts.invalidCommand);
  if (args.some((arg) => forbidden.test(arg) || !arg.isWellFormed())) return fail(verb, 'invalid_command', texts.invalidCharacters);
  const bytes = args.reduce((sum, arg) => sum + Buffer.byteLength(arg) + 1, verb.length);
  if (bytes > ctx.config.maxLineBytes) return fail(verb, 'too_long', texts.lineTooLong(ctx.config.maxLineBytes));
  // The same shape as the line would have: a word where the table wants a
  // word (a username with a space is a usage error, never half a password).
  const parsed = row.args(args.join(' '));
  const same = parsed !== null && parsed.length === args.length && parsed.every((arg, k) => arg === args[k]);
  return execute(ctx, caller, row, same ? args : null);
}

/** Applies the table's columns (session, rate limit, activity, usage), then the handler. */
async function execute(ctx: Context, caller: Caller, row: CommandRow, args: string[] | null): Promise<Reply> {
  const { verb } = row;
  try {
    let session: SessionInfo | null = null;
    let recording: Promise<void> | null = null;
    if (row.session) {
      if (!caller.session) return fail(verb, 'not_logged_in', texts.notLoggedIn);
      const touch = args !== null && row.activity;
      if (caller.bound) {
        if (!takeToken(caller.bound, ctx.clock.now(), ctx.config.commandRate, ctx.config.commandBurst)) {
          return fail(verb, 'rate_limited', texts.commandRateLimited);
        }
        if (touch) recording = recordActivity(ctx, caller.session, caller.bound);
      } else {
        const refusal = await checkInStore(ctx, verb, caller.session, touch);
        if (refusal) return refusal;
      }
      session = caller.session;
    }
    if (args === null) return fail(verb, 'usage', texts.usage(row.synopsis));
    // A bound connection's activity goes to the store beside the command,
    // in the same round trip (auto-pipelining), not before it.
    const [reply] = await Promise.all([row.handler(ctx, args, session, caller), recording]);
    return reply;
  } catch (err) {
    ctx.log?.('error', 'command failed', { verb: row.verb, user: caller.session?.user, err });
    return fail(verb, 'unavailable', texts.unavailable);
  }
}

type Session = NonNullable<Caller['session']>;

/** A request that carries a token: checked, rate-limited and touched in the store, where every replica sees it. */
async function checkInStore(ctx: Context, verb: string, { user, token }: Session, activity: boolean): Promise<Reply | null> {
  const check = await ctx.state.admitCommand(user, token, ctx.clock.now(), {
    activity,
    rate: ctx.config.commandRate,
    burst: ctx.config.commandBurst,
  });
  if (check.ok) return null;
  if (check.reason === 'rate_limited') return fail(verb, 'rate_limited', texts.commandRateLimited);
  return fail(verb, 'not_logged_in', check.reason === 'ended' ? texts.sessionEnded : texts.notLoggedIn);
}

/** Binds a session to a connection that writes its events up to `cursor()` (see BoundSession). */
export function bindSession(ctx: Context, cursor: () => Cursor): BoundSession {
  return { tokens: ctx.config.commandBurst, tokensAt: ctx.clock.now(), touchedAt: 0, cursor };
}

/** How often a bound connection records activity (and its cursor) in the store. */
export const activityIntervalMs = 1000;

/**
 * Records a bound connection's activity and cursor in the store, at most
 * once per `activityIntervalMs` (see BoundSession). A failure is not the
 * command's: the next command tries again.
 */
async function recordActivity(ctx: Context, { user, token }: Session, bound: BoundSession): Promise<void> {
  const now = ctx.clock.now();
  if (now - bound.touchedAt < activityIntervalMs) return;
  bound.touchedAt = now;
  try {
    await ctx.state.recordActivity(user, token, now, bound.cursor());
  } catch (err) {
    bound.touchedAt = 0;
    ctx.log?.('warn', 'recording activity failed', { user, err });
  }
}
