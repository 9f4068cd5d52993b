import type { Context } from './types.js';

/** SPEC section 1: 1-32 characters of [A-Za-z0-9_.-]. */
export const usernamePattern = /^[A-Za-z0-9_.-]{1,32}$/;

export function isUsername(name: string): boolean {
  return usernamePattern.test(name);
}

/**
 * Seeds the user store: users not there yet are created; users already there
 * keep their stored password, so a reset made with the management command
 * survives restarts. Safe to run from several replicas at once.
 */
export async function importUsers(ctx: Context, entries: { user: string; password: string }[]): Promise<string[]> {
  // Hashed side by side: the password module runs as many at once as it
  // allows, so ten users cost five seconds' worth of scrypt, not ten.
  const added = await Promise.all(
    entries.map(async ({ user, password }) => {
      if (!isUsername(user) || (await ctx.state.userExists(user))) return null;
      return (await ctx.state.addUser(user, await ctx.passwords.hash(password))) ? user : null;
    }),
  );
  return added.filter((user): user is string => user !== null);
}

/** The user a session token names (tokens are `<user>:<secret>`), or null if it is not a token. */
export function tokenUser(token: string): string | null {
  const colon = token.indexOf(':');
  const user = colon < 0 ? '' : token.slice(0, colon);
  return isUsername(user) ? user : null;
}
