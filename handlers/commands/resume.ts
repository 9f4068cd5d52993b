import { Cursor } from '../../state/cursor.js';
import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';
import { tokenUser } from '../users.js';

/**
 * resume <token> [<cursor>] (SPEC section 2): re-attaches a live session to a
 * new connection; the transport then replays every event after the cursor.
 * A session that ended while the client was away is resumed too, so that
 * its client reads the session_end event and learns why.
 */
export const resume: Handler = async (ctx, [token, cursorText], _session, caller) => {
  if (caller.session) return fail('resume', 'already_logged_in', texts.alreadyLoggedIn);
  const user = tokenUser(token);
  if (!user) return fail('resume', 'not_logged_in', texts.notLoggedIn);
  // An ended session resumes only to replay its session_end; once that was
  // read, the token is refused. A removed user's ended session is kept a
  // while for its long-poll to read why, but is never resumed.
  const given = cursorText === undefined ? null : Cursor.parse(cursorText);
  const [cursor, exists] = await Promise.all([ctx.state.resumable(user, token, given), ctx.state.userExists(user)]);
  if (cursor === 'none' || !exists) return fail('resume', 'not_logged_in', texts.notLoggedIn);
  if (cursor === 'ended') return fail('resume', 'not_logged_in', texts.sessionEnded);
  const gap = await ctx.state.trimmedAfter(user, cursor);
  return ok('resume', '', {
    user,
    token,
    cursor: String(cursor),
    ...(gap ? { gap: true } : {}),
    effects: { attach: { user, token, cursor } },
  });
};
