import type { Logger } from '../handlers/types.js';

/** One line per entry: time, level, message, then key=value fields. */
export function createLogger(write: (line: string) => void = (line) => process.stderr.write(line + '\n')): Logger {
  return (level, message, fields = {}) => {
    const extra = Object.entries(fields)
      .map(([k, v]) => ` ${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join('');
    write(`${new Date().toISOString()} ${level} ${message}${extra}`);
  };
}
