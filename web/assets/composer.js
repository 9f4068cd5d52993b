// The input line. With "To" empty it is a command line, sent exactly as
// typed, as the CLI's prompt and an IRC client's input line take it: a typo
// such as `whoels` gets the server's `Error. Invalid command` rather than
// going to everyone as a broadcast. With a user in "To", a line is a message
// to them, unless it starts with a CLI verb (then it is a command as typed).

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
  const recipient = to.trim();
  if (recipient === '' || verbs.has(line.split(' ', 1)[0])) return line;
  return `message ${recipient} ${line}`;
}

/** `block hans` / `unblock hans` as typed: [verb, user], else null. */
export function blockTarget(line) {
  const match = /^(block|unblock) (\S+)$/.exec(line);
  return match ? [match[1], match[2]] : null;
}
