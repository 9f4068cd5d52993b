import { formatCursor, parseCursor } from '../../state/cursor.js';
import { tokenUser } from './login.js';
import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * resume <token> [<cursor>] (SPEC section 2): re-attaches a live session to a
 * new connection; the transport then replays every event after the cursor.
 * A session that ended while the client was away is resumed too, so that
 * its client reads the session_end event and learns why.
 */
export const resume: Handler = async (ctx, [token, cursorText], _session, caller) => {
  if (caller.session) return fail('resume', 'already_logged_in', texts.alreadyLoggedIn);
  const given = cursorText === undefined ? null : parseCursor(cursorText);
  const user = tokenUser(token);
  if (!user) return fail('resume', 'not_logged_in', texts.notLoggedIn);
  const check = await ctx.state.checkSession(user, token, ctx.clock.now(), { touch: false, rate: 0, burst: 0 });
  if (!check.ok && check.reason !== 'ended') return fail('resume', 'not_logged_in', texts.notLoggedIn);
  const cursor = given ?? check.cursor;
  const [inbox, lobby] = await Promise.all([ctx.state.read(user, cursor.inbox, 0), ctx.state.readLobby(cursor.lobby, 0)]);
  const gap = inbox.gap || lobby.gap;
  return ok('resume', '', { user, token, cursor: formatCursor(cursor), ...(gap ? { gap: true } : {}) });
};
