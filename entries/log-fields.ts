import type { LogLevel } from '../handlers/types.js';

/** Log levels, least severe first; an entry below the configured one is not written. */
export const logLevels = ['debug', 'info', 'warn', 'error'] as const satisfies readonly LogLevel[];

/** Fields never written, whatever a caller passes in (the replica's log and the Worker's). */
export const secretFields: ReadonlySet<string> = new Set(['password', 'token']);

/** Whether an entry at `level` is written when the log is set to `least`. */
export function logs(least: LogLevel, level: LogLevel): boolean {
  return logLevels.indexOf(level) >= logLevels.indexOf(least);
}
