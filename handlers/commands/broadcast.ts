import { encode } from '../events.js';
import { tooLong } from './message.js';
import { ok, texts } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * broadcast <text>: to every online user but the sender, skipping those who
 * blocked the sender; nothing is stored for offline users. One lobby event,
 * however many users are online: it names the users to skip, found through
 * the reverse block index, and each replica filters it per session. Some
 * recipients were skipped if any of those blockers is online.
 */
export const broadcast: Handler = async (ctx, [body], session) => {
  const from = session!.user;
  const overLimit = tooLong(ctx, 'broadcast', body);
  if (overLimit) return overLimit;
  const json = encode.broadcast(from, body, ctx.clock.now());
  const blockers = await ctx.state.blockedBy(from);
  const [, reachable] = await Promise.all([
    ctx.state.appendLobby([from, ...blockers], json, ctx.config.lobbyBacklog),
    ctx.state.onlineAmong(blockers),
  ]);
  const skipped = reachable.length > 0;
  return ok('broadcast', skipped ? texts.broadcastPartial : '', skipped ? { partial: true } : {});
};
