import type { Redis } from 'ioredis';

/** `INFO <section>` as field -> value. */
export async function info(redis: Redis, section: string): Promise<Record<string, string>> {
  const text = await redis.info(section);
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** Calls per command so far (INFO commandstats; commands run inside Lua scripts count too). */
export async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const fields = await info(redis, 'commandstats');
  const calls: Record<string, number> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (!key.startsWith('cmdstat_')) continue;
    const m = /calls=(\d+)/.exec(value);
    if (m) calls[key.slice('cmdstat_'.length)] = Number(m[1]);
  }
  return calls;
}

const SCRIPT_CALLS = ['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'fcall_ro'];

export interface CommandDelta {
  /** Every command, including those run inside scripts; the runner's own INFO calls left out. */
  total: number;
  /** Script invocations (EVALSHA, EVAL, FCALL). */
  scripts: number;
  byCommand: Record<string, number>;
}

export function commandDelta(before: Record<string, number>, after: Record<string, number>): CommandDelta {
  const byCommand: Record<string, number> = {};
  let total = 0;
  let scripts = 0;
  for (const [command, calls] of Object.entries(after)) {
    if (command === 'info') continue;
    const delta = calls - (before[command] ?? 0);
    if (delta <= 0) continue;
    byCommand[command] = delta;
    total += delta;
    if (SCRIPT_CALLS.includes(command)) scripts += delta;
  }
  return { total, scripts, byCommand };
}

/** Dividing a delta by a count of operations: commands per operation. */
export function perOperation(delta: CommandDelta, operations: number): CommandDelta {
  const n = Math.max(1, operations);
  const byCommand: Record<string, number> = {};
  for (const [command, calls] of Object.entries(delta.byCommand)) byCommand[command] = round(calls / n);
  return { total: round(delta.total / n), scripts: round(delta.scripts / n), byCommand };
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export async function memory(redis: Redis): Promise<{ usedBytes: number; rssBytes: number }> {
  const fields = await info(redis, 'memory');
  return { usedBytes: Number(fields.used_memory ?? 0), rssBytes: Number(fields.used_memory_rss ?? 0) };
}
