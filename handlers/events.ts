import type { NewEvent } from '../state/index.js';
import { texts } from './replies.js';

export type EndReason = 'logout' | 'timeout' | 'shutdown';

/** What kind of event it is: its JSON `type`. */
export type EventKind = 'message' | 'broadcast' | 'presence' | 'private_request' | 'private_accept' | 'private_decline' | 'session_end';

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
};

function event(kind: EventKind, at: number, fields: Record<string, unknown>): NewEvent {
  return { kind, at, json: JSON.stringify({ type: kind, ...fields }) };
}

export const encode = {
  /** The store closes it with `"offline":true|false` (state/lua/deliver-5.lua). */
  message: (from: string, body: string, at: number) => event('message', at, { from, body, at, text: texts.delivered(from, body) }),
  broadcast: (from: string, body: string, at: number) => event('broadcast', at, { from, body, at, text: texts.delivered(from, body) }),
  presence: (user: string, state: 'in' | 'out', at: number, reason?: 'logout' | 'timeout') =>
    event('presence', at, {
      user,
      state,
      ...(reason ? { reason } : {}),
      at,
      text: state === 'in' ? texts.loggedIn(user) : texts.loggedOut(user),
    }),
  privateRequest: (from: string, at: number) => event('private_request', at, { from, at, text: texts.privateRequest(from) }),
  privateAccept: (peer: string, host: string, port: number, token: string, at: number) =>
    event('private_accept', at, { peer, host, port, token, at, text: '' }),
  privateDecline: (peer: string, at: number) => event('private_decline', at, { peer, at, text: texts.privateDeclined(peer) }),
  sessionEnd: (reason: EndReason, at: number) => event('session_end', at, { reason, at, text: endTexts[reason] }),
};
