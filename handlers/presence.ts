import { encode, type EndReason } from './events.js';
import type { Context } from './types.js';

/**
 * Tells every other online user that `user` logged in or out (SPEC section
 * 2), except the users `user` has blocked: one lobby event that names them.
 */
export async function announce(ctx: Context, user: string, state: 'in' | 'out', reason?: 'logout' | 'timeout'): Promise<void> {
  const blocked = await ctx.state.blocked(user);
  const json = encode.presence(user, state, ctx.clock.now(), reason);
  await ctx.state.appendLobby([user, ...blocked], json, ctx.config.lobbyBacklog);
}

/** How long an ended session stays readable, so its client can fetch session_end. */
export const endedSessionRetainMs = 60 * 60 * 1000;

/**
 * Ends a session if it is still live (and, for a sweep, still idle since
 * `idleSince` or started by `startedBefore`), then records the user offline
 * and announces it. Whoever ends it first wins; everyone else gets `none`,
 * `active` or `young`, so each end is announced once.
 */
export async function endSession(
  ctx: Context,
  user: string,
  token: string,
  reason: Exclude<EndReason, 'shutdown'>,
  only: { idleSince?: number; startedBefore?: number } = {},
) {
  const now = ctx.clock.now();
  const result = await ctx.state.endSession(
    user,
    { token, reason, now, ...only, event: encode.sessionEnd(reason, now) },
    ctx.config.backlog,
    endedSessionRetainMs,
  );
  if (result.ok) {
    await ctx.state.markOffline(user, now);
    // Others see a timeout as one; any other end as a logout.
    await announce(ctx, user, 'out', reason === 'timeout' ? 'timeout' : 'logout');
  }
  return result;
}
