import { tokenUser } from './login.js';
import { fail, ok, texts } from './replies.js';
import type { Handler } from './types.js';

/**
 * resume <token> [<cursor>] (SPEC section 2): re-attaches a live session to a
 * new connection; the transport then replays every event after the cursor.
 * A session that ended while the client was away is resumed too, so that
 * its client reads the session_end event and learns why.
 */
export const resume: Handler = async (ctx, [token, cursorText], _session, caller) => {
  if (caller.session) return fail('resume', 'already_logged_in', texts.alreadyLoggedIn);
  const user = tokenUser(token);
  if (!user || (cursorText !== undefined && !/^\d{1,15}$/.test(cursorText))) {
    return fail('resume', 'not_logged_in', texts.notLoggedIn);
  }
  const check = await ctx.state.checkSession(user, token, ctx.clock.now(), { touch: false, rate: 0, burst: 0 });
  if (!check.ok && check.reason !== 'ended') return fail('resume', 'not_logged_in', texts.notLoggedIn);
  const cursor = cursorText === undefined ? check.cursor : Number(cursorText);
  const page = await ctx.state.read(user, cursor, 0);
  return ok('resume', '', { user, token, cursor: String(cursor), ...(page.gap ? { gap: true } : {}) });
};
