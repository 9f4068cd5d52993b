import { encode } from '../handlers/events.js';
import type { Context } from '../handlers/types.js';
import { Cursor } from '../state/cursor.js';
import type { EventPage, StoredEvent } from '../state/index.js';
import type { Wakeups } from './wakeups.js';

/** An event on its way to a session: its encoded JSON and the cursor after it (its id). */
export interface OutEvent {
  json: string;
  cursor: Cursor;
}

/** A session's events after a cursor, from both of its streams, merged. */
export interface FeedPage {
  events: OutEvent[];
  /** The cursor after this page (past skipped lobby events too). */
  cursor: Cursor;
  /** Events after the cursor read from were trimmed away (either stream); `events` then starts with a `gap` event. */
  gap: boolean;
  /** More may follow at once: a stream filled its page. */
  more: boolean;
  /** The last event is the session's session_end: nothing follows it. */
  ended: boolean;
}

/** An event's line as its client gets it: its JSON with its id (the cursor after it) added, `{...,"id":"17-4"}`. */
export function eventLine(json: string, cursor: Cursor | string): string {
  return `${json.slice(0, -1)},"id":"${cursor}"}`;
}

/** A session's last event: nothing after it is passed on, and its connection closes. */
export function endsSession(event: StoredEvent): boolean {
  return event.kind === 'session_end';
}

/**
 * Merges a user's inbox events and lobby events after `start` in time order,
 * leaving out the lobby events that skip the user and everything after the
 * session's own session_end (its last event). Each event's cursor names how
 * far both streams have been read once it is passed on, so a client that
 * resumes from any event's id gets exactly what followed it.
 */
export function merge(user: string, start: Cursor, inbox: StoredEvent[], lobby: StoredEvent[]): { events: OutEvent[]; cursor: Cursor; ended: boolean } {
  const events: OutEvent[] = [];
  let cursor = start;
  let a = 0;
  let b = 0;
  while (a < inbox.length || b < lobby.length) {
    const takeInbox = b >= lobby.length || (a < inbox.length && inbox[a].at <= lobby[b].at);
    if (takeInbox) {
      const event = inbox[a++];
      cursor = cursor.withInbox(event.id);
      events.push({ json: event.json, cursor });
      if (endsSession(event)) return { events, cursor, ended: true };
    } else {
      const event = lobby[b++];
      cursor = cursor.withLobby(event.id);
      if (!event.skip.includes(user)) events.push({ json: event.json, cursor });
    }
  }
  return { events, cursor, ended: false };
}

/**
 * Reads a session's events after `after`: the inbox from the store (or the
 * page given, already read by a long-poll's token check; or nothing when the
 * caller knows the inbox has not grown), the lobby from this replica's tail
 * when it covers the position, else from the store.
 */
export async function readFeed(
  ctx: Context,
  live: Wakeups,
  user: string,
  after: Cursor,
  limit: number,
  inbox: EventPage | 'read' | 'unchanged',
): Promise<FeedPage> {
  const tail = live.lobby.after(after.lobby, limit);
  const [inboxPage, lobbyPage] = await Promise.all([
    inbox === 'read' ? ctx.state.read(user, after.inbox, limit) : inbox === 'unchanged' ? null : inbox,
    tail ? null : ctx.state.readLobby(after.lobby, limit),
  ]);
  // Where each stream's read really started: a trimmed backlog moves it up.
  const start = new Cursor(inboxPage ? startOf(inboxPage) : after.inbox, lobbyPage ? startOf(lobbyPage) : after.lobby);
  const lobbyEvents = tail ?? lobbyPage!.events;
  const merged = merge(user, start, inboxPage?.events ?? [], lobbyEvents);
  const gap = Boolean(inboxPage?.gap || lobbyPage?.gap);
  // The loss is an event of its own, where it happened: its id is the
  // position the read really started from, so a client that saw it resumes
  // after it, and one that did not (a dropped connection, a lost answer)
  // resumes from before it and is told again (SPEC section 4).
  if (gap) merged.events.unshift({ json: encode.gap(ctx.clock.now()).json, cursor: start });
  return {
    events: merged.events,
    cursor: merged.cursor,
    gap,
    more: !merged.ended && ((inboxPage?.events.length ?? 0) >= limit || lobbyEvents.length >= limit),
    ended: merged.ended,
  };
}

/** The position a page was read after: just before its first event, else where it ended. */
function startOf(page: { events: { id: number }[]; cursor: number }): number {
  return page.events.length ? page.events[0].id - 1 : page.cursor;
}
