import { logLevels } from './log-fields.js';
import { defaultConfig, type Config } from '../handlers/types.js';

/**
 * The Worker's configuration, from its vars and secrets (wrangler.toml
 * `[vars]`, `wrangler secret put`). The names are the Node server's
 * environment variables; block_duration and timeout, positional on Node, are
 * `IM_BLOCK_DURATION` and `IM_TIMEOUT`.
 */
type Count = { [K in keyof Config]: Config[K] extends number ? K : never }[keyof Config];

export const workerVars: Record<string, Count> = {
  IM_BLOCK_DURATION: 'blockDuration',
  IM_TIMEOUT: 'timeout',
  IM_SESSION_LIFETIME: 'sessionLifetime',
  IM_COMMAND_RATE: 'commandRate',
  IM_COMMAND_BURST: 'commandBurst',
  IM_LOGIN_RATE: 'loginRate',
  IM_LOGIN_BURST: 'loginBurst',
  IM_ADDRESS_FAILURES: 'addressFailures',
  IM_MAX_MESSAGE: 'maxMessageLength',
  IM_MAX_LINE: 'maxLineBytes',
  IM_MAX_BODY: 'maxBodyBytes',
  IM_BACKLOG: 'backlog',
  IM_LOBBY_BACKLOG: 'lobbyBacklog',
  IM_PRIVATE_REQUEST_TTL: 'privateRequestTtl',
};

export interface WorkerOptions {
  /** `REDIS_URL`: one Redis, reachable over TCP from the Worker. */
  redis: string;
  /** `IM_POLL_INTERVAL`: milliseconds between a parked long-poll's looks at its streams' heads. */
  pollInterval: number;
  /** `IM_LOG_LEVEL`: debug (a line per command), info, warn or error. */
  logLevel: (typeof logLevels)[number];
  config: Config;
}


export class WorkerConfigError extends Error {}

/** Reads and checks the vars; a wrong one throws a WorkerConfigError naming it. */
export function workerOptions(env: Record<string, unknown>): WorkerOptions {
  const text = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };
  const integer = (name: string, fallback: number, least = 0): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < least) throw new WorkerConfigError(`${name} must be an integer of at least ${least}, got "${raw}"`);
    return Number(raw);
  };
  const redis = text('REDIS_URL');
  if (!redis) throw new WorkerConfigError('REDIS_URL is not set (wrangler secret put REDIS_URL)');
  if (redis.includes(',')) throw new WorkerConfigError('REDIS_URL names several nodes: the Worker takes one Redis, not a cluster');
  // The Worker only checks passwords: new hashes are made by the operator's
  // user tool on Node, and remaking one at login (half a second of CPU and
  // 128 MiB at the default cost) is beyond a Worker's limits.
  const config = { ...defaultConfig, rehashPasswords: false };
  for (const [name, key] of Object.entries(workerVars)) config[key] = integer(name, defaultConfig[key], key === 'timeout' ? 1 : 0);
  const logLevel = logLevels.find((level) => level === (text('IM_LOG_LEVEL') ?? 'info'));
  if (!logLevel) throw new WorkerConfigError(`IM_LOG_LEVEL must be one of ${logLevels.join(', ')}, got "${text('IM_LOG_LEVEL')}"`);
  return { redis, pollInterval: integer('IM_POLL_INTERVAL', 1000, 50), logLevel, config };
}
