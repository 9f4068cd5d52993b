// What survives a reload of the tab, in sessionStorage (never a cookie, so a
// request from another site carries no credential): the session, the
// conversation shown so far, and the users this user is known to block.
// Storage may be unavailable (private modes, quotas): then nothing survives.

const sessionKey = 'im.session';
const logKey = 'im.log';
const blockedKey = (user) => `im.blocked.${user}`;
const keptLines = 500;

function read(key) {
  try {
    const text = sessionStorage.getItem(key);
    return text === null ? null : JSON.parse(text);
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Not kept; the page works on without it.
  }
}

/** { user, token, cursor } or null. */
export function loadSession() {
  const s = read(sessionKey);
  return s && typeof s.user === 'string' && typeof s.token === 'string' && typeof s.cursor === 'string' ? s : null;
}

export function saveSession(session) {
  write(sessionKey, session);
}

export function clearSession() {
  write(sessionKey, null);
  write(logKey, null);
}

export function loadLog() {
  const lines = read(logKey);
  return Array.isArray(lines) ? lines : [];
}

export function saveLog(lines) {
  write(logKey, lines.slice(-keptLines));
}

export function loadBlocked(user) {
  const users = read(blockedKey(user));
  return new Set(Array.isArray(users) ? users : []);
}

export function saveBlocked(user, users) {
  write(blockedKey(user), [...users]);
}
