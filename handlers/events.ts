import type { NewEvent, PeerListener } from '../state/index.js';
import { texts } from './replies.js';

/**
 * Why a session ended: the user's logout, inactivity, this replica going
 * away (the session goes on), the operator (`npm run users -- logout`,
 * `remove`, `reset`), or the session's absolute lifetime (`--session-lifetime`).
 */
export type EndReason = 'logout' | 'timeout' | 'shutdown' | 'operator' | 'removed' | 'password_changed' | 'expired';

/** What kind of event it is: its JSON `type`. */
export type EventKind = 'message' | 'broadcast' | 'presence' | 'private_request' | 'private_accept' | 'private_decline' | 'session_end' | 'gap';

/**
 * Events are encoded to JSON once, when they are created, and stored with
 * their kind and time beside the JSON (state's NewEvent): delivery routes
 * and orders them by those fields and never parses the JSON. The id (the
 * cursor after the event) is spliced in on the way out, so a broadcast to a
 * thousand users is encoded once, not a thousand times.
 */

const endTexts: Record<EndReason, string> = {
  logout: texts.endLogout,
  timeout: texts.endTimeout,
  shutdown: texts.endShutdown,
  operator: texts.endOperator,
  removed: texts.endRemoved,
  password_changed: texts.endPasswordChanged,
  expired: texts.endExpired,
};

/** An event of `kind` at `at`, its JSON encoded from `fields` (which start with the same `type`). */
function event(kind: EventKind, at: number, fields: { type: EventKind; at: number; text: string; [field: string]: unknown }): NewEvent {
  return { kind, at, json: JSON.stringify(fields) };
}

export const encode = {
  /** The store closes it with `"offline":true|false` (state/lua/deliver-5.lua). */
  message: (from: string, body: string, at: number) => event('message', at, { type: 'message', from, body, at, text: texts.delivered(from, body) }),
  broadcast: (from: string, body: string, at: number) => event('broadcast', at, { type: 'broadcast', from, body, at, text: texts.delivered(from, body) }),
  presence: (user: string, state: 'in' | 'out', at: number, reason?: 'logout' | 'timeout') =>
    event('presence', at, {
      type: 'presence',
      user,
      state,
      ...(reason ? { reason } : {}),
      at,
      text: state === 'in' ? texts.loggedIn(user) : texts.loggedOut(user),
    }),
  privateRequest: (from: string, at: number) => event('private_request', at, { type: 'private_request', from, at, text: texts.privateRequest(from) }),
  /** `fingerprint` is the acceptor's certificate's: the requester accepts no other at `host`:`port`. */
  privateAccept: (peer: string, { host, port, fingerprint }: PeerListener, token: string, at: number) =>
    event('private_accept', at, { type: 'private_accept', peer, host, port, fingerprint, token, at, text: '' }),
  privateDecline: (peer: string, at: number) => event('private_decline', at, { type: 'private_decline', peer, at, text: texts.privateDeclined(peer) }),
  sessionEnd: (reason: EndReason, at: number) => event('session_end', at, { type: 'session_end', reason, at, text: endTexts[reason] }),
  /**
   * Not stored: delivery writes it where a read found that events after the
   * session's cursor were trimmed away (delivery/feed.ts), so the client
   * learns of the loss at the point where it happened.
   */
  gap: (at: number) => event('gap', at, { type: 'gap', at, text: texts.gap }),
};
