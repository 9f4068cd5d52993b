import { announce } from '../presence.js';
import { fail, ok, texts } from '../replies.js';
import { addressGroup } from '../address-group.js';
import type { Context, Effects, Handler } from '../types.js';
import { isUsername } from '../users.js';

/**
 * login <username> <password> (SPEC section 2). The address guard runs first
 * (an address is its IPv6 /64, handlers/address-group.ts) so a locked
 * address learns nothing about accounts; the account lock is
 * checked before the password so a locked account is refused even with the
 * right one, and is checked again atomically when the session opens.
 */
export const login: Handler = async (ctx, [user, password], _session, caller) => {
  const { state, config } = ctx;
  if (caller.session) return fail('login', 'already_logged_in', texts.alreadyLoggedIn);
  const now = ctx.clock.now();
  const blockMs = config.blockDuration * 1000;
  const address = addressGroup(caller.address);
  const addressTtlMs = blockMs + 60_000;
  const guard = await state.guardAddress(address, now, config.loginRate, config.loginBurst, addressTtlMs);
  if (guard === 'address_blocked') return fail('login', 'address_blocked', texts.addressBlocked);
  if (guard === 'rate_limited') return fail('login', 'rate_limited', texts.loginRateLimited);

  // The lobby position is read before the user is online: every lobby event
  // from then on reaches the new session.
  const [record, lobbyHead] = await Promise.all([isUsername(user) ? state.loginRecord(user) : null, state.lobbyHead()]);
  // A failure is counted atomically, and not at all once a lock has fallen:
  // attempts that were in flight when it fell are refused as locked.
  if (!record) {
    const count = await state.countAddressFailure(address, 'unknown_user', config.loginFailures, now, now + blockMs, addressTtlMs);
    if (count === 'still_locked') return fail('login', 'address_blocked', texts.addressBlocked);
    if (count === 'locked') return fail('login', 'invalid_user', texts.usernameLocked, { locked: 'address', effects: failedLogin });
    return fail('login', 'invalid_user', texts.invalidUsername, { effects: failedLogin });
  }
  if (record.lockedUntil > now) return fail('login', 'account_blocked', texts.accountBlocked, { effects: closes });
  if (!(await ctx.passwords.verify(password, record.hash))) {
    // Counted twice: against the account (SPEC section 2), and against the
    // address, so one address trying a password over many accounts (each
    // below its own limit) is locked out too. The two locks are apart.
    const [count, fromAddress] = await Promise.all([
      state.countPasswordFailure(user, config.loginFailures, now, now + blockMs),
      config.addressFailures > 0 ? state.countAddressFailure(address, 'wrong_password', config.addressFailures, now, now + blockMs, addressTtlMs) : null,
    ]);
    if (count === 'still_locked') return fail('login', 'account_blocked', texts.accountBlocked, { effects: closes });
    if (count === 'locked') return fail('login', 'invalid_password', texts.passwordLocked, { locked: 'account', effects: failedLogin });
    if (fromAddress === 'still_locked') return fail('login', 'address_blocked', texts.addressBlocked);
    return fail('login', 'invalid_password', texts.invalidPassword, { ...(fromAddress === 'locked' ? { locked: 'address' } : {}), effects: failedLogin });
  }
  if (config.rehashPasswords && ctx.passwords.outdated(record.hash)) await rehash(ctx, user, password, record.hash);

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

/**
 * Remakes a hash made at a lower cost, now that the password is known. Only
 * if it is still the hash that was checked: a reset that raced with this
 * login wins. A failure is logged and the login goes on.
 */
async function rehash(ctx: Context, user: string, password: string, checked: string): Promise<void> {
  try {
    await ctx.state.replacePasswordHash(user, checked, await ctx.passwords.hash(password));
  } catch (err) {
    ctx.log?.('warn', 'could not remake an outdated password hash', { user, err });
  }
}

/** A wrong name or password: counted by the connection (SPEC section 2). */
const failedLogin: Effects = { failedLogin: true };
/** A blocked account: the connection closes. */
const closes: Effects = { close: true };

