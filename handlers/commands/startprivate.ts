import { encode } from '../events.js';
import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';
import { isUsername } from '../users.js';

/**
 * startprivate <user> (SPEC section 5): asks the other user for a direct
 * chat. The request is recorded before it is delivered, so an answer can
 * never arrive before the record it answers.
 */
export const startprivate: Handler = async (ctx, [target], session) => {
  const user = session!.user;
  if (target === user) return fail('startprivate', 'self', texts.privateSelf);
  if (!isUsername(target)) return fail('startprivate', 'invalid_user', texts.invalidUser);
  if (!(await ctx.state.peerListener(user))) return fail('startprivate', 'p2p_unsupported', texts.privateNeedsCli);
  const now = ctx.clock.now();
  await ctx.state.addPrivateRequest(target, user, now + ctx.config.privateRequestTtl * 1000);
  const result = await ctx.state.deliver(target, { from: user, event: encode.privateRequest(user, now), storable: false }, ctx.config.backlog);
  if (result.ok) return ok('startprivate', texts.privateRequested(target));
  await ctx.state.dropPrivateRequest(target, user);
  if (result.reason === 'blocked') return fail('startprivate', 'blocked', texts.privateBlocked(target));
  if (result.reason === 'offline') return fail('startprivate', 'offline', texts.privateOffline(target));
  return fail('startprivate', 'invalid_user', texts.invalidUser);
};
