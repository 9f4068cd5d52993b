import { texts } from './replies.js';

/**
 * Events are encoded to JSON once, when they are created, and stored encoded;
 * the id (the cursor after the event) is spliced in on the way out, so a
 * broadcast to a thousand users is encoded once, not a thousand times.
 */
export type EndReason = 'logout' | 'timeout' | 'shutdown';

const endTexts: Record<EndReason, string> = {
  logout: texts.endLogout,
  timeout: texts.endTimeout,
  shutdown: texts.endShutdown,
};

export const encode = {
  /** The store closes it with `"offline":true|false` (state/lua/deliver-5.lua). */
  message: (from: string, body: string, at: number) =>
    JSON.stringify({ type: 'message', from, body, at, text: texts.delivered(from, body) }),
  broadcast: (from: string, body: string, at: number) =>
    JSON.stringify({ type: 'broadcast', from, body, at, text: texts.delivered(from, body) }),
  presence: (user: string, state: 'in' | 'out', at: number, reason?: 'logout' | 'timeout') =>
    JSON.stringify({
      type: 'presence',
      user,
      state,
      ...(reason ? { reason } : {}),
      at,
      text: state === 'in' ? texts.loggedIn(user) : texts.loggedOut(user),
    }),
  privateRequest: (from: string, at: number) =>
    JSON.stringify({ type: 'private_request', from, at, text: texts.privateRequest(from) }),
  privateAccept: (peer: string, host: string, port: number, token: string, at: number) =>
    JSON.stringify({ type: 'private_accept', peer, host, port, token, at, text: '' }),
  privateDecline: (peer: string, at: number) =>
    JSON.stringify({ type: 'private_decline', peer, at, text: texts.privateDeclined(peer) }),
  sessionEnd: (reason: EndReason, at: number) =>
    JSON.stringify({ type: 'session_end', reason, at, text: endTexts[reason] }),
};

/** An encoded event with its id (an opaque cursor) added: `{...,"id":"17-4"}`. */
export function withId(json: string, id: string): string {
  return `${json.slice(0, -1)},"id":"${id}"}`;
}
