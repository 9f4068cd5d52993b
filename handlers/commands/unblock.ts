import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';
import { isUsername } from '../users.js';

/** unblock <user>: reverses block. */
export const unblock: Handler = async (ctx, [target], session) => {
  const user = session!.user;
  if (target === user) return fail('unblock', 'self', texts.unblockSelf);
  if (!isUsername(target) || !(await ctx.state.userExists(target))) return fail('unblock', 'invalid_user', texts.invalidUser);
  if (!(await ctx.state.unblock(user, target))) return fail('unblock', 'not_blocked', texts.notBlocked(target));
  return ok('unblock', texts.unblockDone(target));
};
