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
  const stored = user ? await ctx.state.sessionCursor(user, token) : null;
  if (!user || !stored) return fail('resume', 'not_logged_in', texts.notLoggedIn);
  const cursor = (cursorText === undefined ? null : Cursor.parse(cursorText)) ?? stored.cursor;
  const gap = await ctx.state.trimmedAfter(user, cursor);
  return ok('resume', '', {
    user,
    token,
    cursor: String(cursor),
    ...(gap ? { gap: true } : {}),
    effects: { attach: { user, token, cursor } },
  });
};
