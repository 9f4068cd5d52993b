import { endedSessionRetainMs, endSession } from './presence.js';
import type { Context } from './types.js';

/**
 * What the operator's user tool does to a user (SPEC section 1: users change
 * without a restart). A change that takes a user's access away ends their
 * live session first, through the same step a logout takes: its
 * `session_end`, with a reason that says why, reaches the session's
 * connection or long-poll on whichever replica serves it (the inbox
 * wake-up it already listens to), the others see the user log out, and the
 * token is refused from then on.
 */
export const operator = {
  /** Ends the user's live session, if any; true if there was one. */
  async logout(ctx: Context, user: string): Promise<boolean> {
    return (await endSession(ctx, user, '', 'operator')).ok;
  },

  /** Removes the user, their inbox, blocks and session; false if there was no such user. */
  async remove(ctx: Context, user: string): Promise<boolean> {
    if (!(await ctx.state.userExists(user))) return false;
    await endSession(ctx, user, '', 'removed');
    // The ended session and its inbox stay readable a while, so its
    // client can still read why; nothing else of the user remains.
    return ctx.state.removeUser(user, endedSessionRetainMs);
  },

  /** Sets a new password (lifting a login lock) and ends the live session; false if there is no such user. */
  async resetPassword(ctx: Context, user: string, password: string): Promise<boolean> {
    const done = await ctx.state.setPassword(user, await ctx.passwords.hash(password));
    if (done) await endSession(ctx, user, '', 'password_changed');
    return done;
  },
};
