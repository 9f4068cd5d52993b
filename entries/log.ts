import { hostname } from 'node:os';
import pino, { type DestinationStream } from 'pino';
import type { Logger, LogLevel } from '../handlers/types.js';
import { logs, secretFields as secret } from './log-fields.js';

export { logLevels } from './log-fields.js';

/** `json` for machines, `text` for people; `auto` is text on a terminal and JSON otherwise. */
export type LogFormat = 'auto' | 'json' | 'text';
export const logFormats: readonly LogFormat[] = ['auto', 'json', 'text'];


/**
 * The replica's log, one entry per line on stderr, from start-up on.
 *
 * JSON (pino): `level`, `time`, `msg`, `replica`, and the entry's fields; an
 * `err` field is written with its stack. Text: `<ISO time> <LEVEL> <msg>`
 * then `key=value` fields, for a person at a terminal. Passwords and tokens
 * are never passed in, and are removed by name should one ever be.
 */
export function createLogger(
  level: LogLevel = 'info',
  destination: DestinationStream = pino.destination(2),
  format: LogFormat = 'json',
): Logger {
  const text = format === 'text' || (format === 'auto' && process.stderr.isTTY === true);
  return text ? textLogger(level, destination) : jsonLogger(level, destination);
}

function jsonLogger(level: LogLevel, destination: DestinationStream): Logger {
  const log = pino(
    {
      level,
      base: { replica: `${hostname()}:${process.pid}` },
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...secret].flatMap((name) => [name, `*.${name}`]), censor: '[redacted]' },
    },
    destination,
  );
  return (entryLevel, message, fields = {}) => log[entryLevel](fields, message);
}

function textLogger(least: LogLevel, destination: DestinationStream): Logger {
  return (entryLevel, message, fields = {}) => {
    if (!logs(least, entryLevel)) return;
    const parts = [new Date().toISOString(), entryLevel.toUpperCase().padEnd(5), message];
    for (const [key, value] of Object.entries(fields)) parts.push(`${key}=${textValue(key, value)}`);
    destination.write(parts.join(' ') + '\n');
  };
}

function textValue(key: string, value: unknown): string {
  if (secret.has(key)) return '[redacted]';
  if (value instanceof Error) return JSON.stringify(value.stack ?? value.message);
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value, (k, v: unknown) => (secret.has(k) ? '[redacted]' : v)) ?? String(value);
}
