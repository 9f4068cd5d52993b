import { ok } from './replies.js';
import type { Context, Handler } from './types.js';

/**
 * `users` without the caller and without those who blocked the caller, in
 * the order given (online users come in login order).
 */
export async function visibleTo(ctx: Context, caller: string, users: Iterable<string>): Promise<string[]> {
  const others = [...new Set(users)].filter((u) => u !== caller);
  const blockers = await ctx.state.blockersOf(caller, others);
  return others.filter((u) => !blockers.has(u));
}

/** whoelse: the other online users, one per line. */
export const whoelse: Handler = async (ctx, _args, session) => {
  const users = await visibleTo(ctx, session!.user, await ctx.state.online());
  return ok('whoelse', users.join('\n'), { users });
};
