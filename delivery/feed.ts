import type { Context } from '../handlers/types.js';
import type { Cursor } from '../state/cursor.js';
import type { EventPage, LobbyEvent, StoredEvent } from '../state/index.js';
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
  /** Events after the cursor read from were trimmed away (either stream). */
  gap: boolean;
  /** More may follow at once: a stream filled its page. */
  more: boolean;
}

/**
 * When an event happened, from its encoding. Every encoded event has a
 * top-level `"at"`; a `,"at":` inside a string value would need its quote
 * escaped, so the first match is the field itself.
 */
function eventTime(json: string): number {
  const m = /,"at":(\d+)/.exec(json);
  return m ? Number(m[1]) : 0;
}

const sessionEnd = '{"type":"session_end"';

/**
 * Merges a user's inbox events and lobby events after `start` in time order,
 * leaving out the lobby events that skip the user and everything after the
 * session's own session_end (its last event). Each event's cursor names how
 * far both streams have been read once it is passed on, so a client that
 * resumes from any event's id gets exactly what followed it.
 */
export function merge(user: string, start: Cursor, inbox: StoredEvent[], lobby: LobbyEvent[]): { events: OutEvent[]; cursor: Cursor; ended: boolean } {
  const events: OutEvent[] = [];
  let { inbox: i, lobby: l } = start;
  let a = 0;
  let b = 0;
  while (a < inbox.length || b < lobby.length) {
    const takeInbox = b >= lobby.length || (a < inbox.length && eventTime(inbox[a].json) <= eventTime(lobby[b].json));
    if (takeInbox) {
      const event = inbox[a++];
      i = event.id;
      events.push({ json: event.json, cursor: { inbox: i, lobby: l } });
      if (event.json.startsWith(sessionEnd)) return { events, cursor: { inbox: i, lobby: l }, ended: true };
    } else {
      const event = lobby[b++];
      l = event.id;
      if (!event.skip.includes(user)) events.push({ json: event.json, cursor: { inbox: i, lobby: l } });
    }
  }
  return { events, cursor: { inbox: i, lobby: l }, ended: false };
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
  const start = {
    inbox: inboxPage ? startOf(inboxPage) : after.inbox,
    lobby: lobbyPage ? startOf(lobbyPage) : after.lobby,
  };
  const lobbyEvents = tail ?? lobbyPage!.events;
  const merged = merge(user, start, inboxPage?.events ?? [], lobbyEvents);
  return {
    events: merged.events,
    cursor: merged.cursor,
    gap: Boolean(inboxPage?.gap || lobbyPage?.gap),
    more: !merged.ended && ((inboxPage?.events.length ?? 0) >= limit || lobbyEvents.length >= limit),
  };
}

/** The position a page was read after: just before its first event, else where it ended. */
function startOf(page: { events: { id: number }[]; cursor: number }): number {
  return page.events.length ? page.events[0].id - 1 : page.cursor;
}
