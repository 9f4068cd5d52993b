// The input line. With "To" empty it is a command line, sent exactly as
// typed, as the CLI's prompt and an IRC client's input line take it: a typo
// such as `whoels` gets the server's `Error. Invalid command` rather than
// going to everyone as a broadcast. With a user in "To", a line is a message
// to them, unless it starts with one of the verbs a person types (the
// server's list marks them `typed`; then it is a command as typed).

// The verbs come from the server (GET /commands), never from a list of the
// page's own, so a command added to the server is a command here too. The
// page asks once at start. Until the list has arrived, any first word could
// be a verb: a line with a user in "To" then asks again (or waits for the
// request under way), and if the list still cannot be had, the line is sent
// as typed, as with "To" empty. The server then runs it or answers
// `Error. Invalid command`; it never goes to the user in "To" as a message
// it was not meant to be.

/** The server's verbs, or null until they have arrived. */
let verbs = null;
/** The request for them under way, if any. */
let asking = null;

/**
 * Learns the verbs with `fetchCommands` (api.commands) unless known, sharing
 * a request under way. Resolves true once they are known, false if this
 * attempt failed; never rejects.
 */
export function learnVerbs(fetchCommands) {
  if (verbs) return Promise.resolve(true);
  asking ??= fetchCommands()
    .then(({ status, body }) => {
      if (status !== 200 || !Array.isArray(body.commands)) return false;
      // Only what a person types: "touch base later" to a user is a message.
      const typed = body.commands.filter((row) => row?.typed === true);
      verbs = new Set(typed.map((row) => row.verb).filter((verb) => typeof verb === 'string' && verb !== ''));
      return true;
    })
    .catch(() => false)
    .finally(() => {
      asking = null;
    });
  return asking;
}

/** Whether the server's verbs are known. */
export function knowsVerbs() {
  return verbs !== null;
}

/** The command line to send for what the user typed, or null for nothing. */
export function commandLine(text, to) {
  const line = text.trim();
  if (line === '') return null;
  const recipient = to.trim();
  // Verbs unknown: the line goes as typed (see above).
  if (recipient === '' || verbs === null || verbs.has(line.split(' ', 1)[0])) return line;
  return `message ${recipient} ${line}`;
}

/** `block hans` / `unblock hans` as typed: [verb, user], else null. */
export function blockTarget(line) {
  const match = /^(block|unblock) (\S+)$/.exec(line);
  return match ? [match[1], match[2]] : null;
}
