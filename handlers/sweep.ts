import { endSession } from './presence.js';
import type { Context } from './types.js';

/**
 * One inactivity sweep (SPEC section 2). Every replica runs it; a session is
 * ended by whichever sweep claims it first, atomically, so each timeout is
 * announced once. Candidates come from the online set, whose scores are a
 * lower bound of each session's last activity; the claim checks the real one.
 */
export async function sweepIdleSessions(ctx: Context, limit = 500): Promise<string[]> {
  const now = ctx.clock.now();
  const idleSince = now - ctx.config.timeout * 1000;
  const candidates = await ctx.state.idleCandidates(idleSince, limit);
  const ended: string[] = [];
  await Promise.all(
    candidates.map(async (user) => {
      const result = await endSession(ctx, user, '', 'timeout', idleSince);
      if (result.ok) ended.push(user);
      else if (result.reason === 'active') await ctx.state.noteActivity(user, result.lastActive);
      else await ctx.state.markOffline(user, now);
    }),
  );
  return ended;
}
