import type { Reply, ServerEvent } from './connection.js';

/**
 * The client's own texts: what it says about itself (connection, peer chat).
 * Everything else it prints is the server's `text`, word for word.
 */
export const clientTexts = {
  usage: 'Usage: client <server_host> <server_port> [--tls] [--ca FILE]',
  username: 'Username: ',
  password: 'Password: ',
  cannotConnect: (where: string, reason: string) => `Error. Cannot connect to the server at ${where} (${reason})`,
  certificateRejected: (where: string, reason: string) =>
    `Error. The server at ${where} could not be verified (${reason}): nothing was sent. If it uses a private CA, pass that CA's certificate with --ca FILE`,
  caUnreadable: (file: string, reason: string) => `Error. Cannot use ${file} as the CA certificate (${reason})`,
  httpPort: (where: string) =>
    `Error. ${where} answered in HTTP: this looks like the server's HTTP port. The client speaks the server's TCP protocol, which listens on port 4000 by default`,
  connectionClosed: 'Error. The server closed the connection',
  connectionLost: 'Connection lost. Reconnecting...',
  reconnected: 'Reconnected.',
  /** Follows the server's refusal of the resume, which is printed as it came. */
  sessionLost: 'The session could not be resumed, so it has ended. Please log in again.',
  unconfirmed: (verb: string) => `The connection was lost before "${verb}" was answered: it may not have been done`,
  notSent: (verb: string) => `"${verb}" was not sent: the session had ended`,
  usagePrivate: 'Usage: private <user> <text>',
  usageStopprivate: 'Usage: stopprivate <user>',
  privateNotEnabled: (user: string) => `Error. Private messaging to ${user} not enabled`,
  privateTooLong: (max: number) => `Error. Message too long (at most ${max} characters)`,
  /** The server's own wording, shown again while the request waits. */
  privateRequest: (user: string) => `${user} would like to chat privately. Accept? (y/n)`,
  /** Several requests wait: a plain y/n would not say which. */
  privateRequests: (users: readonly string[]) =>
    `${users.slice(0, -1).join(', ')} and ${users[users.length - 1]} would like to chat privately. Accept? (y <user> / n <user>)`,
  privateYouDeclined: (user: string) => `Declined private messaging with ${user}`,
  privateAlready: (user: string) => `Error. Private messaging with ${user} is already enabled`,
  privateStart: (peer: string) => `Start private messaging with ${peer}`,
  privateMessage: (from: string, text: string) => `${from}(private): ${text}`,
  privateStopped: (peer: string) => `Stopped private messaging with ${peer}`,
  privatePeerStopped: (peer: string) => `${peer} stopped private messaging`,
  privateEnded: (peer: string) => `Private messaging with ${peer} ended`,
  privateUnreachable: (peer: string) => `Error. Could not connect to ${peer} for private messaging`,
  privateRefused: (peer: string) => `Error. ${peer} refused the private messaging connection`,
  /** A certificate on the peer connection was not the one the server relayed (SPEC section 5, point 5); both sides say it. */
  privateUnverified: (peer: string) => `Error. Private messaging with ${peer} could not be verified, so the connection was closed`,
};

/** What the client prints for a reply, or null when it prints nothing. */
export function replyText(reply: Reply): string | null {
  // A reply's `gap` is not printed: the `gap` event that follows it in the
  // session's stream says so, where the loss happened.
  return reply.text ? printable(reply.text, true) : null;
}

/** What the client prints for an event, or null when it prints nothing. */
export function eventText(event: ServerEvent): string | null {
  return event.text ? printable(event.text, true) : null;
}

/**
 * Text from the network never reaches the terminal raw: a control character
 * could move the cursor or rewrite what the user sees. The server refuses
 * them already; a peer is another user's program and may not.
 */
export function printable(text: string, multiline = false): string {
  return text.replace(multiline ? /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g : /[\u0000-\u001f\u007f-\u009f]/g, '?');
}
