// The public HTTP API (SPEC section 4), nothing else: every answer is
// { status, body } with the JSON body the server sent. A network failure
// (server down, connection reset) rejects; the caller decides what it means.

async function call(path, init) {
  const res = await fetch(path, { cache: 'no-store', ...init });
  let body;
  try {
    body = await res.json();
  } catch {
    // Not our server's JSON (a proxy's error page): the same as no answer.
    throw new Error(`unexpected answer ${res.status} from ${path}`);
  }
  return { status: res.status, body };
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });

export function login(username, password) {
  return call('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
}

/** Sends one command line exactly as the CLI would. */
export function command(token, line) {
  return call('/command', {
    method: 'POST',
    headers: { ...bearer(token), 'content-type': 'text/plain; charset=utf-8' },
    body: line,
  });
}

/**
 * The server's commands: { commands: [{ verb, synopsis, session }, ...] }.
 * Given up after a few seconds: lines the user typed may be waiting for it.
 */
export function commands() {
  return call('/commands', { signal: AbortSignal.timeout(5000) });
}

/**
 * One long-poll. The cursor is opaque: it is passed back exactly as the
 * server gave it, never parsed or compared.
 */
export function events(token, cursor, waitSeconds, signal) {
  const query = new URLSearchParams({ after: cursor, wait: String(waitSeconds) });
  return call(`/events?${query}`, { headers: bearer(token), signal });
}
