import { announce } from '../presence.js';
import { fail, ok, texts } from '../replies.js';
import type { Effects, Handler } from '../types.js';
import { isUsername } from '../users.js';

/**
 * login <username> <password> (SPEC section 2). The address guard runs first
 * so a locked address learns nothing about accounts; the account lock is
 * checked before the password so a locked account is refused even with the
 * right one, and is checked again atomically when the session opens.
 */
export const login: Handler = async (ctx, [user, password], _session, caller) => {
  const { state, config } = ctx;
  if (caller.session) return fail('login', 'already_logged_in', texts.alreadyLoggedIn);
  const now = ctx.clock.now();
  const blockMs = config.blockDuration * 1000;
  const guard = await state.guardAddress(caller.address, now, config.loginRate, config.loginBurst, blockMs + 60_000);
  if (guard === 'address_blocked') return fail('login', 'address_blocked', texts.addressBlocked);
  if (guard === 'rate_limited') return fail('login', 'rate_limited', texts.loginRateLimited);

  // The lobby position is read before the user is online: every lobby event
  // from then on reaches the new session.
  const [record, lobbyHead] = await Promise.all([isUsername(user) ? state.loginRecord(user) : null, state.lobbyHead()]);
  // A failure is counted atomically, and not at all once a lock has fallen:
  // attempts that were in flight when it fell are refused as locked.
  if (!record) {
    const count = await state.countAddressFailure(caller.address, config.loginFailures, now, now + blockMs, blockMs + 60_000);
    if (count === 'still_locked') return fail('login', 'address_blocked', texts.addressBlocked);
    if (count === 'locked') return fail('login', 'invalid_user', texts.usernameLocked, { locked: 'address', effects: failedLogin });
    return fail('login', 'invalid_user', texts.invalidUsername, { effects: failedLogin });
  }
  if (record.lockedUntil > now) return fail('login', 'account_blocked', texts.accountBlocked, { effects: closes });
  if (!(await ctx.passwords.verify(password, record.hash))) {
    const count = await state.countPasswordFailure(user, config.loginFailures, now, now + blockMs);
    if (count === 'still_locked') return fail('login', 'account_blocked', texts.accountBlocked, { effects: closes });
    if (count === 'locked') return fail('login', 'invalid_password', texts.passwordLocked, { locked: 'account', effects: failedLogin });
    return fail('login', 'invalid_password', texts.invalidPassword, { effects: failedLogin });
  }

  // The token names its user so any replica finds the session in one look-up.
  const token = `${user}:${ctx.secret()}`;
  const opened = await state.openSession(user, token, now, caller.address, lobbyHead);
  if (!opened.ok) {
    if (opened.reason === 'account_blocked') return fail('login', 'account_blocked', texts.accountBlocked, { effects: closes });
    if (opened.reason === 'already_logged_in') return fail('login', 'already_logged_in', texts.alreadyLoggedIn);
    return fail('login', 'invalid_user', texts.invalidUsername);
  }
  await state.markOnline(user, now);
  await announce(ctx, user, 'in');
  const { cursor, gap } = opened;
  return ok('login', texts.welcome, {
    user,
    token,
    cursor: String(cursor),
    ...(gap ? { gap: true } : {}),
    effects: { attach: { user, token, cursor } },
  });
};

/** A wrong name or password: counted by the connection (SPEC section 2). */
const failedLogin: Effects = { failedLogin: true };
/** A blocked account: the connection closes. */
const closes: Effects = { close: true };

