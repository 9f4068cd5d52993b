import { encode } from '../handlers/events.js';
import type { Context } from '../handlers/types.js';
import type { Cursor } from '../state/cursor.js';
import { readFeed, type FeedPage } from './feed.js';
import type { Wake } from './live.js';
import type { Wakeups } from './wakeups.js';

const eventsPerPoll = 200;

export interface PollRequest {
  user: string;
  token: string;
  /** The cursor the client passed (and so acknowledges), or null: the session's stored cursor. */
  after: Cursor | null;
  waitMs: number;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  /** The replica is going away: answer now, with a session_end (shutdown) when there is nothing else. */
  closing(): boolean;
  /** Called around each wait, for the parked-polls gauge. */
  parked(delta: 1 | -1): void;
}

/**
 * One long-poll (SPEC section 4): checks the token and acknowledges `after`
 * (or takes the stored cursor), reads both streams after it and, when there
 * is nothing yet, holds until a wake-up brings something for this session,
 * the wait passes or the client leaves. Listening starts before the first
 * read, so nothing falls between them; after that, a lobby wake-up is
 * answered from this replica's lobby tail, and only an inbox wake-up reads
 * the inbox. 'none': not a live session's token; 'ended': the session ended
 * and its client has read its session_end.
 */
export async function longPoll(ctx: Context, live: Wakeups, o: PollRequest): Promise<FeedPage | 'none' | 'ended'> {
  let wake: (() => void) | null = null;
  let inboxGrew = false;
  const onWake = (w: Wake) => {
    if (w.kind !== 'lobby') inboxGrew = true;
    wake?.();
  };
  const stop = o.waitMs > 0 ? await live.listen(o.user, onWake) : () => undefined;
  let linger = true;
  try {
    const first = await ctx.state.poll(o.user, o.token, o.after, eventsPerPoll);
    if (!first.ok) {
      linger = first.reason !== 'none';
      return first.reason;
    }
    inboxGrew = false;
    let page = await readFeed(ctx, live, o.user, first.after, eventsPerPoll, first.inbox);
    let gap = page.gap;
    const deadline = Date.now() + o.waitMs;
    while (page.events.length === 0 && !o.closing() && !o.signal.aborted && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        const done = () => {
          clearTimeout(timer);
          o.signal.removeEventListener('abort', done);
          wake = null;
          resolve();
        };
        wake = done;
        o.signal.addEventListener('abort', done, { once: true });
        o.parked(1);
      }).finally(() => o.parked(-1));
      const inbox = inboxGrew ? 'read' : 'unchanged';
      inboxGrew = false;
      page = await readFeed(ctx, live, o.user, page.cursor, eventsPerPoll, inbox);
      gap ||= page.gap;
    }
    // Without `after`, the stored cursor is the client's: advance it.
    if (o.after === null && !page.cursor.equals(first.after)) await ctx.state.saveCursor(o.user, o.token, page.cursor);
    if (o.closing() && page.events.length === 0) {
      // As on TCP: the replica is going away, the session is not. The event
      // is not stored, so its id is the cursor the client already has.
      page = { ...page, events: [{ json: encode.sessionEnd('shutdown', Date.now()).json, cursor: page.cursor }] };
    }
    return { ...page, gap };
  } finally {
    // A wrong token leaves no subscription behind for the name it gave.
    stop(linger);
  }
}
