import { encode } from '../events.js';
import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * acceptprivate <user>: answers a pending request. Only now does the
 * requester learn where to connect; both sides get the same one-time token,
 * the requester in its private_accept event, the acceptor in this reply.
 * Each also gets the other's certificate fingerprint, as each advertised it
 * with p2p, and accepts no other certificate on the peer connection (SPEC
 * section 5, point 5).
 */
export const acceptprivate: Handler = async (ctx, [requester], session) => {
  const user = session!.user;
  const listener = await ctx.state.peerListener(user);
  if (!listener) return fail('acceptprivate', 'p2p_unsupported', texts.privateNeedsCli);
  const now = ctx.clock.now();
  if (!(await ctx.state.takePrivateRequest(user, requester, now))) {
    return fail('acceptprivate', 'no_request', texts.privateNoRequest(requester));
  }
  // Read after the request is taken, so that a user who asked nothing learns nothing.
  const requesterListener = await ctx.state.peerListener(requester);
  if (!requesterListener) {
    // Gone, or back in a client that takes no peers (a browser): either way nothing could verify the chat.
    const online = (await ctx.state.onlineAmong([requester])).length > 0;
    return online
      ? fail('acceptprivate', 'p2p_unsupported', texts.privatePeerNeedsCli(requester))
      : fail('acceptprivate', 'offline', texts.privateOffline(requester));
  }
  const token = ctx.secret();
  const event = encode.privateAccept(user, listener, token, now);
  const result = await ctx.state.deliver(requester, { from: user, event, storable: false }, ctx.config.backlog);
  if (result.ok) return ok('acceptprivate', '', { peer: requester, token, fingerprint: requesterListener.fingerprint });
  if (result.reason === 'blocked') return fail('acceptprivate', 'blocked', texts.privateBlocked(requester));
  return fail('acceptprivate', 'offline', texts.privateOffline(requester));
};
