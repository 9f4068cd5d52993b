import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';
import { isUsername } from '../users.js';

/** block <user>: the target is not told. */
export const block: Handler = async (ctx, [target], session) => {
  const user = session!.user;
  if (target === user) return fail('block', 'self', texts.blockSelf);
  if (!isUsername(target) || !(await ctx.state.userExists(target))) return fail('block', 'invalid_user', texts.invalidUser);
  if (!(await ctx.state.block(user, target))) return fail('block', 'already_blocked', texts.alreadyBlocked(target));
  return ok('block', texts.blockDone(target));
};
