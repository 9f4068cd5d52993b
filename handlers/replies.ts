import type { Reply } from './types.js';

/**
 * Error codes (SPEC section 4) and their HTTP statuses. `no_request` is ours:
 * answering a private-chat request nobody made; so is `cross_site`: a form
 * login another site's page made a browser send; and `invalid_listener`: a
 * `p2p` whose host, port or certificate fingerprint a peer could not use.
 */
export const statusOf = {
  invalid_command: 400,
  usage: 400,
  invalid_user: 401,
  self: 400,
  blocked: 403,
  offline: 409,
  already_blocked: 409,
  not_blocked: 409,
  invalid_password: 401,
  account_blocked: 403,
  address_blocked: 403,
  already_logged_in: 409,
  not_logged_in: 401,
  too_long: 413,
  rate_limited: 429,
  p2p_unsupported: 400,
  invalid_listener: 400,
  no_request: 409,
  cross_site: 403,
  too_many_connections: 503,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof statusOf;

/** Every user-visible text, word for word from SPEC.md where it gives one. */
export const texts = {
  welcome: 'Welcome to the greatest messaging application ever!',
  invalidCommand: 'Error. Invalid command',
  invalidCharacters: 'Error. Invalid command: control characters and invalid UTF-8 are not allowed',
  usage: (synopsis: string) => `Usage: ${synopsis}`,
  invalidPassword: 'Invalid Password. Please try again',
  passwordLocked: 'Invalid Password. Your account has been blocked. Please try again later',
  accountBlocked: 'Your account is blocked due to multiple login failures. Please try again later',
  invalidUsername: 'Invalid Username. Please try again',
  usernameLocked: 'Invalid Username. Your address has been blocked. Please try again later',
  addressBlocked: 'Your address is blocked due to multiple login failures. Please try again later',
  alreadyLoggedIn: 'This user is already logged in',
  notLoggedIn: 'Error. You are not logged in',
  sessionEnded: 'Error. Your session has ended. Please log in again',
  invalidUser: 'Error. Invalid user',
  messageSelf: 'Error. Cannot message self',
  messageBlocked: 'Your message could not be delivered as the recipient has blocked you',
  broadcastPartial: 'Your message could not be delivered to some recipients',
  blockDone: (user: string) => `${user} is blocked`,
  blockSelf: 'Error. Cannot block self',
  alreadyBlocked: (user: string) => `Error. ${user} is already blocked`,
  unblockDone: (user: string) => `${user} is unblocked`,
  notBlocked: (user: string) => `Error. ${user} was not blocked`,
  unblockSelf: 'Error. Cannot unblock self',
  privateOffline: (user: string) => `Error. ${user} is offline`,
  privateBlocked: (user: string) => `Error. ${user} has blocked you`,
  privateSelf: 'Error. Cannot start private messaging with self',
  privateNeedsCli: 'Error. Private messaging needs the command-line client',
  /** The requester's session no longer has a peer listener (it ended, or went on in a browser). */
  privatePeerNeedsCli: (user: string) => `Error. ${user} is no longer on the command-line client`,
  privateNotEnabled: (user: string) => `Error. Private messaging to ${user} not enabled`,
  privateRequested: (user: string) => `Private messaging request sent to ${user}`,
  privateNoRequest: (user: string) => `Error. ${user} has not asked to chat privately`,
  privateRequest: (user: string) => `${user} would like to chat privately. Accept? (y/n)`,
  privateDeclined: (user: string) => `${user} declined private messaging`,
  listenerHost: 'Error. The peer listener\'s host must be an IPv4 or IPv6 address that peers can connect to',
  listenerPort: 'Error. The peer listener\'s port must be a number from 1 to 65535',
  listenerFingerprint: 'Error. p2p needs the SHA-256 fingerprint of the peer listener\'s certificate, as 32 uppercase hex pairs separated by colons',
  messageTooLong: (max: number) => `Error. Message too long (at most ${max} characters)`,
  lineTooLong: (max: number) => `Error. Line too long (at most ${max} bytes)`,
  loginTimedOut: (seconds: number) => `Error. Not logged in within ${seconds} s. The connection is closed`,
  lineTimedOut: (seconds: number) => `Error. Line not finished within ${seconds} s. The connection is closed`,
  bodyTooLong: (max: number) => `Error. Request body too long (at most ${max} bytes)`,
  commandRateLimited: 'Error. Too many commands. Please slow down',
  byteRateLimited: 'Error. Sending too fast. The connection is closed; please reconnect and slow down',
  serverFull: 'Error. The server has too many connections. Please try again later',
  addressFull: (max: number) => `Error. Too many connections from your address (at most ${max}). Please close one and try again`,
  crossSiteLogin: 'Error. A login from another site is refused',
  loginRateLimited: 'Error. Too many login attempts. Please try again later',
  unavailable: 'Error. The service is unavailable. Please try again later',
  delivered: (from: string, text: string) => `${from}: ${text}`,
  loggedIn: (user: string) => `${user} logged in`,
  loggedOut: (user: string) => `${user} logged out`,
  endLogout: 'You have been logged out',
  endTimeout: 'You have been logged out due to inactivity',
  endShutdown: 'The server is shutting down. Reconnecting...',
  endOperator: 'You have been logged out by the administrator',
  endRemoved: 'Your account has been removed. You have been logged out',
  endExpired: 'Your session has expired. Please log in again',
  endPasswordChanged: 'Your password has been changed. Please log in again',
  /** A `gap` event: events after the client's cursor were trimmed before it got them (SPEC section 4). */
  gap: 'Some earlier events were missed: the server no longer keeps them',
};

/**
 * A reply as the client gets it: without its effects, or the answer that
 * stands in for it. The object itself when it has no effects (most replies).
 */
export function wireReply(reply: Reply): Record<string, unknown> {
  const { effects } = reply;
  if (!effects) return reply;
  if (effects.answer) return effects.answer;
  const { effects: _effects, ...wire } = reply;
  return wire;
}

export function ok(cmd: string, text = '', fields: Record<string, unknown> = {}): Reply {
  return { type: 'reply', cmd, ok: true, text, ...fields };
}

export function fail(cmd: string, error: ErrorCode, text: string, fields: Record<string, unknown> = {}): Reply {
  return { type: 'reply', cmd, ok: false, error, text, ...fields };
}

/** The HTTP status a reply maps to (SPEC section 4). */
export function httpStatus(reply: Reply): number {
  if (reply.ok) return 200;
  return statusOf[reply.error as ErrorCode] ?? 400;
}
