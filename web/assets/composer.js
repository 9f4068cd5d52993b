// The input line: a CLI command line is sent as typed, as an IRC client's
// input line does; anything else is a message to the user named in "To", or
// a broadcast when "To" is empty.

/** The verbs a user types in the CLI (SPEC section 3). */
export const verbs = new Set([
  'message',
  'broadcast',
  'whoelse',
  'whoelsesince',
  'block',
  'unblock',
  'logout',
  'startprivate',
  'private',
  'stopprivate',
]);

/** The command line to send for what the user typed, or null for nothing. */
export function commandLine(text, to) {
  const line = text.trim();
  if (line === '') return null;
  const verb = line.split(' ', 1)[0];
  if (verbs.has(verb)) return line;
  const recipient = to.trim();
  return recipient === '' ? `broadcast ${line}` : `message ${recipient} ${line}`;
}

/** `block hans` / `unblock hans` as typed: [verb, user], else null. */
export function blockTarget(line) {
  const match = /^(block|unblock) (\S+)$/.exec(line);
  return match ? [match[1], match[2]] : null;
}
