import { encode } from '../events.js';
import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * acceptprivate <user>: answers a pending request. Only now does the
 * requester learn where to connect; both sides get the same one-time token,
 * the requester in its private_accept event, the acceptor in this reply.
 */
export const acceptprivate: Handler = async (ctx, [requester], session) => {
  const user = session!.user;
  const listener = await ctx.state.peerListener(user);
  if (!listener) return fail('acceptprivate', 'p2p_unsupported', texts.privateNeedsCli);
  const now = ctx.clock.now();
  if (!(await ctx.state.takePrivateRequest(user, requester, now))) {
    return fail('acceptprivate', 'no_request', texts.privateNoRequest(requester));
  }
  const token = ctx.secret();
  const event = encode.privateAccept(user, listener.host, Number(listener.port), token, now);
  const result = await ctx.state.deliver(requester, { from: user, event, storable: false }, ctx.config.backlog);
  if (result.ok) return ok('acceptprivate', '', { peer: requester, token });
  if (result.reason === 'blocked') return fail('acceptprivate', 'blocked', texts.privateBlocked(requester));
  return fail('acceptprivate', 'offline', texts.privateOffline(requester));
};
