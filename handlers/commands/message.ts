import { encode } from '../events.js';
import { fail, ok, texts } from '../replies.js';
import type { Context, Handler, Reply } from '../types.js';
import { isUsername } from '../users.js';

/**
 * The message length rule shared by message and broadcast, in characters
 * (code points). A UTF-16 length within the limit already proves the count
 * is, so only long texts pay for counting.
 */
export function tooLong(ctx: Context, cmd: string, body: string): Reply | null {
  const max = ctx.config.maxMessageLength;
  if (body.length <= max || [...body].length <= max) return null;
  return fail(cmd, 'too_long', texts.messageTooLong(max));
}

/**
 * message <user> <text>: delivered now if the recipient is online, else
 * stored for their next login; refused, and not stored, if they blocked the
 * sender. One atomic step on the recipient's keys does all of it, and marks
 * the event `offline` when it was stored for later.
 */
export const message: Handler = async (ctx, [to, body], session) => {
  const from = session!.user;
  const overLimit = tooLong(ctx, 'message', body);
  if (overLimit) return overLimit;
  if (to === from) return fail('message', 'self', texts.messageSelf);
  if (!isUsername(to)) return fail('message', 'invalid_user', texts.invalidUser);
  const now = ctx.clock.now();
  const result = await ctx.state.deliver(
    to,
    { from, event: encode.message(from, body, now), storable: true },
    ctx.config.backlog,
  );
  if (result.ok) return ok('message');
  if (result.reason === 'blocked') return fail('message', 'blocked', texts.messageBlocked);
  return fail('message', 'invalid_user', texts.invalidUser);
};
