import { encode } from '../events.js';
import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';

/** declineprivate <user>: answers a pending request with no. */
export const declineprivate: Handler = async (ctx, [requester], session) => {
  const user = session!.user;
  const now = ctx.clock.now();
  if (!(await ctx.state.takePrivateRequest(user, requester, now))) {
    return fail('declineprivate', 'no_request', texts.privateNoRequest(requester));
  }
  // A requester who has gone offline or blocked us needs no answer.
  await ctx.state.deliver(requester, { from: user, event: encode.privateDecline(user, now), storable: false }, ctx.config.backlog);
  return ok('declineprivate');
};
