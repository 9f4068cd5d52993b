import { newSecret, scryptPasswords } from '../handlers/passwords.js';
import type { Config, Context, Logger } from '../handlers/types.js';
import type { State } from '../state/index.js';

/**
 * The one place a handler context is put together, for every entry (the
 * Node replica, the Worker, the operator's user tool): the real clock,
 * scrypt passwords at the configured cost and random secrets over the given
 * store.
 */
export function createContext(state: State, config: Config, log?: Logger): Context {
  return { state, clock: { now: () => Date.now() }, config, passwords: scryptPasswords(config.passwordCost), secret: newSecret, log };
}
