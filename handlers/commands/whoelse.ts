import { ok } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * `users` without the caller and without `blockers` (those who blocked the
 * caller, from the reverse block index), in the order given (online users
 * come in login order).
 */
export function visibleTo(caller: string, users: Iterable<string>, blockers: string[]): string[] {
  const hidden = new Set(blockers).add(caller);
  return [...new Set(users)].filter((u) => !hidden.has(u));
}

/** whoelse: the other online users, one per line. */
export const whoelse: Handler = async (ctx, _args, session) => {
  const user = session!.user;
  const [online, blockers] = await Promise.all([ctx.state.online(), ctx.state.blockedBy(user)]);
  const users = visibleTo(user, online, blockers);
  return ok('whoelse', users.join('\n'), { users });
};
