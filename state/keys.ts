/**
 * Redis key layout. Every per-user key carries the user's name as its hash
 * tag (`{alice}`), so one Lua script can touch all of a user's keys on a
 * Redis Cluster. Usernames cannot contain braces (SPEC section 1).
 */
export const keys = {
  /** hash: password hash, inbox sequence, seen cursor, failed logins, lock. */
  user: (u: string) => `u:{${u}}`,
  /** hash: token, started, active, cursor, address, p2p listener, rate bucket, ended. */
  session: (u: string) => `s:{${u}}`,
  /** list: encoded events; the last element has id = user.seq. */
  inbox: (u: string) => `i:{${u}}`,
  /** set: users this user has blocked. */
  blocks: (u: string) => `b:{${u}}`,
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
  /** sorted set: users scored by when their last session ended (global). */
  lastSeen: '{im}:lastseen',
};

/** The user a wake channel belongs to, or null for a foreign channel. */
export function wakeChannelUser(channel: string): string | null {
  return channel.startsWith('w:{') && channel.endsWith('}') ? channel.slice(3, -1) : null;
}
