import { endSession } from './presence.js';
import type { Context } from './types.js';

/** Sessions the sweep ended, by why. */
export interface Swept {
  timedOut: string[];
  expired: string[];
}

/**
 * One sweep (SPEC section 2): sessions idle for `timeout` seconds, and
 * sessions older than the absolute lifetime (`sessionLifetime`, active or
 * not: a stolen token stops working within a day). Every replica runs it; a
 * session is ended by whichever sweep claims it first, atomically, so each
 * end is announced once. Candidates come from the online set (scored by a
 * lower bound of each session's last activity) and the set of session
 * starts; the claim checks the session itself.
 */
export async function sweepSessions(ctx: Context, limit = 500): Promise<Swept> {
  const now = ctx.clock.now();
  const idleSince = now - ctx.config.timeout * 1000;
  const startedBefore = now - ctx.config.sessionLifetime * 1000;
  const [idle, old] = await Promise.all([
    ctx.state.idleCandidates(idleSince, limit),
    ctx.config.sessionLifetime > 0 ? ctx.state.expiredCandidates(startedBefore, limit) : [],
  ]);
  const swept: Swept = { timedOut: [], expired: [] };
  await Promise.all([
    ...idle.map(async (user) => {
      const result = await endSession(ctx, user, '', 'timeout', { idleSince });
      if (result.ok) swept.timedOut.push(user);
      else if (result.reason === 'active') await ctx.state.noteActivity(user, result.lastActive);
      else await ctx.state.markOffline(user, now);
    }),
    ...old.map(async (user) => {
      const result = await endSession(ctx, user, '', 'expired', { startedBefore });
      if (result.ok) swept.expired.push(user);
      else if (result.reason === 'young') await ctx.state.noteStarted(user, result.started);
      else if (result.reason === 'none') await ctx.state.markOffline(user, now);
    }),
  ]);
  return swept;
}
