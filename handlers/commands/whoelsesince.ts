import { ok } from '../replies.js';
import type { Handler } from '../types.js';
import { visibleTo } from './whoelse.js';

/**
 * whoelsesince <seconds>: users online at any moment in the window: online
 * now, or their last session ended within it (kept in the state store, so it
 * survives restarts).
 */
export const whoelsesince: Handler = async (ctx, [seconds], session) => {
  const user = session!.user;
  const since = ctx.clock.now() - Number(seconds) * 1000;
  const [online, recent, blockers] = await Promise.all([
    ctx.state.online(),
    ctx.state.endedSince(since),
    ctx.state.blockedBy(user),
  ]);
  const users = visibleTo(user, [...online, ...recent], blockers);
  return ok('whoelsesince', users.join('\n'), { users });
};
