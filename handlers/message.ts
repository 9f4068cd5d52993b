import { encode } from './events.js';
import { fail, ok, texts } from './replies.js';
import type { Handler } from './types.js';
import { isUsername } from './users.js';

/**
 * message <user> <text>: delivered now if the recipient is online, else
 * stored for their next login; refused, and not stored, if they blocked the
 * sender. One atomic step on the recipient's keys does all of it.
 */
export const message: Handler = async (ctx, [to, body], session) => {
  const from = session!.user;
  if ([...body].length > ctx.config.maxMessageLength) {
    return fail('message', 'too_long', texts.messageTooLong(ctx.config.maxMessageLength));
  }
  if (to === from) return fail('message', 'self', texts.messageSelf);
  if (!isUsername(to)) return fail('message', 'invalid_user', texts.invalidUser);
  const now = ctx.clock.now();
  const result = await ctx.state.deliver(
    to,
    { from, online: encode.message(from, body, now, false), offline: encode.message(from, body, now, true) },
    ctx.config.backlog,
  );
  if (result.ok) return ok('message');
  if (result.reason === 'blocked') return fail('message', 'blocked', texts.messageBlocked);
  return fail('message', 'invalid_user', texts.invalidUser);
};
