import { hostname } from 'node:os';
import pino, { type DestinationStream } from 'pino';
import type { Logger, LogLevel } from '../handlers/types.js';

export const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * Structured JSON logs, one object per line on stderr (pino): `level`,
 * `time`, `msg`, `replica`, and the entry's fields; an `err` field is
 * written with its stack. Passwords and tokens are never passed in, and are
 * removed by name should one ever be (`redact`).
 */
export function createLogger(level: LogLevel = 'info', destination: DestinationStream = pino.destination(2)): Logger {
  const log = pino(
    {
      level,
      base: { replica: `${hostname()}:${process.pid}` },
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['password', 'token', '*.password', '*.token'], censor: '[redacted]' },
    },
    destination,
  );
  return (entryLevel, message, fields = {}) => log[entryLevel](fields, message);
}
