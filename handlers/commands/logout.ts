import { endSession } from '../presence.js';
import { ok } from '../replies.js';
import type { Handler } from '../types.js';

/** logout: ends the session; its session_end event follows the reply. */
export const logout: Handler = async (ctx, _args, session) => {
  await endSession(ctx, session!.user, session!.token, 'logout');
  return ok('logout');
};
