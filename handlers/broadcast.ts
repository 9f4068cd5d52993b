import { encode } from './events.js';
import { tooLong } from './message.js';
import { ok, texts } from './replies.js';
import type { Handler } from './types.js';

/**
 * broadcast <text>: to every online user but the sender, skipping those who
 * blocked the sender; nothing is stored for offline users. The event is
 * encoded once for all recipients.
 */
export const broadcast: Handler = async (ctx, [body], session) => {
  const from = session!.user;
  const overLimit = tooLong(ctx, 'broadcast', body);
  if (overLimit) return overLimit;
  const json = encode.broadcast(from, body, ctx.clock.now());
  const recipients = (await ctx.state.online()).filter((u) => u !== from);
  const results = await Promise.all(recipients.map((u) => ctx.state.deliver(u, { from, online: json }, ctx.config.backlog)));
  const skipped = results.some((r) => !r.ok && r.reason === 'blocked');
  return ok('broadcast', skipped ? texts.broadcastPartial : '', skipped ? { partial: true } : {});
};
