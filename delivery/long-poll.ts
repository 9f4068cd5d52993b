import { encode } from '../handlers/events.js';
import type { Context } from '../handlers/types.js';
import type { Cursor } from '../state/cursor.js';
import { readFeed, type FeedPage } from './feed.js';
import type { Wake } from './live.js';
import type { Wakeups } from './wakeups.js';

const eventsPerPoll = 200;

/**
 * How a parked poll learns that its client left: a check and a one-shot
 * callback. A host gives what it has at hand (a Node response's 'close', a
 * Request's AbortSignal, `fromSignal`) rather than a web Request built only
 * for its signal, which costs a parked poll several kilobytes on Node.
 */
export interface ClientGone {
  gone(): boolean;
  /** Calls `fn` once when the client leaves (never before it returns); returns a function that cancels it. */
  onGone(fn: () => void): () => void;
}

/** A ClientGone over an AbortSignal (a Worker's Request). */
export function fromSignal(signal: AbortSignal): ClientGone {
  return {
    gone: () => signal.aborted,
    onGone(fn) {
      signal.addEventListener('abort', fn, { once: true });
      return () => signal.removeEventListener('abort', fn);
    },
  };
}

export interface PollRequest {
  user: string;
  token: string;
  /** The cursor the client passed (and so acknowledges), or null: the session's stored cursor. */
  after: Cursor | null;
  waitMs: number;
  /** Tells when the client goes away. */
  client: ClientGone;
  /** The replica is going away: answer now, with a session_end (shutdown) when there is nothing else. */
  closing(): boolean;
  /** Called around each wait, for the parked-polls gauge. */
  parked(delta: 1 | -1): void;
  /** This replica's parked polls per session (at most two each). */
  limit: ParkedPolls;
}

/**
 * The long-polls parked on this replica, per session token: a session may
 * park `max` at once (a page reloading, a second tab); one more answers the
 * oldest at once, with what it has, so a client cannot pile them up.
 */
export class ParkedPolls {
  private readonly byToken = new Map<string, (() => void)[]>();

  constructor(private readonly max = 2) {}

  /** Parks a poll whose `release` answers it now; returns its removal. */
  enter(token: string, release: () => void): () => void {
    let list = this.byToken.get(token);
    if (!list) this.byToken.set(token, (list = []));
    list.push(release);
    while (list.length > this.max) list.shift()!();
    const parked = list;
    return () => {
      const k = parked.indexOf(release);
      if (k >= 0) parked.splice(k, 1);
      if (parked.length === 0 && this.byToken.get(token) === parked) this.byToken.delete(token);
    };
  }
}

/**
 * One long-poll (SPEC section 4): checks the token and acknowledges `after`
 * (or takes the stored cursor), reads both streams after it and, when there
 * is nothing yet, holds until a wake-up brings something for this session,
 * the wait passes or the client leaves. The token is checked before
 * anything listens: a wrong token costs no subscription. Listening starts
 * before the read that decides to wait, so nothing falls between them;
 * after that, a lobby wake-up is answered from this replica's lobby tail,
 * and only an inbox wake-up reads the inbox. 'none': not a live session's
 * token; 'ended': the session ended and its client has read its
 * session_end.
 */
export async function longPoll(ctx: Context, live: Wakeups, o: PollRequest): Promise<FeedPage | 'none' | 'ended'> {
  const first = await ctx.state.poll(o.user, o.token, o.after, eventsPerPoll);
  if (!first.ok) return first.reason;
  let page = await readFeed(ctx, live, o.user, first.after, eventsPerPoll, first.inbox);
  if (page.events.length > 0 || o.waitMs === 0 || o.closing()) return finish(ctx, o, first.after, page, page.gap);

  let wake: (() => void) | null = null;
  let inboxGrew = false;
  let released = false;
  const onWake = (w: Wake) => {
    if (w.kind !== 'lobby') inboxGrew = true;
    wake?.();
  };
  const stop = await live.listen(o.user, onWake);
  const leave = o.limit.enter(o.token, () => {
    released = true;
    wake?.();
  });
  try {
    // What arrived between the first read and the listening.
    inboxGrew = false;
    page = await readFeed(ctx, live, o.user, page.cursor, eventsPerPoll, 'read');
    let gap = page.gap;
    const deadline = Date.now() + o.waitMs;
    while (page.events.length === 0 && !released && !o.closing() && !o.client.gone() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          cancel();
          wake = null;
          resolve();
        };
        const timer = setTimeout(done, deadline - Date.now());
        const cancel = o.client.onGone(done);
        wake = done;
        o.parked(1);
      }).finally(() => o.parked(-1));
      const inbox = inboxGrew ? 'read' : 'unchanged';
      inboxGrew = false;
      page = await readFeed(ctx, live, o.user, page.cursor, eventsPerPoll, inbox);
      gap ||= page.gap;
    }
    return await finish(ctx, o, first.after, page, gap);
  } finally {
    leave();
    stop();
  }
}

/** Saves the cursor a poll without `after` advanced, and answers a draining replica's empty poll with a session_end (shutdown). */
async function finish(ctx: Context, o: PollRequest, after: Cursor, page: FeedPage, gap: boolean): Promise<FeedPage> {
  // Without `after`, the stored cursor is the client's: advance it.
  if (o.after === null && !page.cursor.equals(after)) await ctx.state.saveCursor(o.user, o.token, page.cursor);
  if (o.closing() && page.events.length === 0) {
    // As on TCP: the replica is going away, the session is not. The event
    // is not stored, so its id is the cursor the client already has.
    page = { ...page, events: [{ json: encode.sessionEnd('shutdown', Date.now()).json, cursor: page.cursor }] };
  }
  return { ...page, gap };
}
