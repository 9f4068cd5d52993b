/**
 * Redis key layout. Every per-user key carries the user's name as its hash
 * tag (`{alice}`), so one Lua script can touch all of a user's keys on a
 * Redis Cluster. Usernames cannot contain braces (SPEC section 1).
 */
export const keys = {
  /** hash: password hash, inbox sequence, seen cursor, failed logins, lock. */
  user: (u: string) => `u:{${u}}`,
  /** hash: token (its SHA-256, see state/redis.ts digest), started, active, cursorInbox/cursorLobby, address, p2p listener (host, port, certificate fingerprint), rate bucket, ended. */
  session: (u: string) => `s:{${u}}`,
  /** list: encoded events; the last element has id = user.seq. */
  inbox: (u: string) => `i:{${u}}`,
  /** set: users this user has blocked. */
  blocks: (u: string) => `b:{${u}}`,
  /** set: users who have blocked this user (the reverse block index). */
  blockedBy: (u: string) => `r:{${u}}`,
  /** hash: requester -> expiry of a pending private-chat request. */
  privateRequests: (u: string) => `p:{${u}}`,
  /** pub/sub channel: the user's inbox grew. */
  wake: (u: string) => `w:{${u}}`,
  /** hash: failed logins, lock and login rate bucket of one client address. */
  address: (a: string) => `a:{${a}}`,
  /** set of all usernames (global). */
  users: '{im}:users',
  /** sorted set: online users scored by last recorded activity (global). */
  online: '{im}:online',
  /** sorted set: online users scored by when their session started (global), for the session lifetime. */
  started: '{im}:started',
  /** sorted set: users scored by when their last session ended (global). */
  lastSeen: '{im}:lastseen',
  /**
   * The lobby: events for every online user (presence, broadcast), stored
   * once. Its own hash slot (`#` is never in a username), so the hottest key
   * of the store can live on a shard of its own.
   */
  lobbyMeta: 'm:{#lobby}',
  /** list: `<skip> <encoded event>`; the last element has id = lobbyMeta.seq. */
  lobby: 'l:{#lobby}',
  /** pub/sub channel: the lobby grew. */
  lobbyWake: 'w:{#lobby}',
  /** string: the version of this layout the data was written in (global). */
  schema: '{im}:schema',
};

/** The user a wake channel belongs to, or null for the lobby's or a foreign channel. */
export function wakeChannelUser(channel: string): string | null {
  if (channel === keys.lobbyWake) return null;
  return channel.startsWith('w:{') && channel.endsWith('}') ? channel.slice(3, -1) : null;
}
