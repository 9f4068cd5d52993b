import type { Config } from '../../handlers/types.js';
import type { RedisState } from '../../state/redis.js';
import { startReplica, type ReplicaOptions } from '../../entries/replica.js';
import { freePort } from './ports.js';
import { testContext } from './context.js';

/**
 * An in-process replica on loopback, plus small helpers for HTTP calls. By
 * default over a fresh ioredis-mock store with a fake clock the test
 * controls; `store` puts it on another store, `realClock` on the real time.
 */
export async function startTestReplica(
  config: Partial<Config> = {},
  options: Partial<ReplicaOptions> = {},
  { store, realClock = false }: { store?: RedisState; realClock?: boolean } = {},
) {
  const { ctx, clock, state } = await testContext(config, store);
  if (realClock) ctx.clock = { now: () => Date.now() };
  const replica = await startReplica({
    ctx,
    host: '127.0.0.1',
    port: 0,
    httpPort: await freePort(),
    metricsPort: await freePort(),
    metricsHost: '127.0.0.1',
    trustProxy: [],
    byteRate: 0,
    byteBurst: 0,
    lineTimeoutMs: 30_000,
    sweepIntervalMs: 50,
    ...options,
  });
  const base = `http://127.0.0.1:${replica.httpPort}`;
  const http = {
    base,
    /** The metrics listener, apart from the public port: `${metrics}/metrics`. */
    metrics: `http://127.0.0.1:${replica.metricsPort}`,
    async login(username: string, password: string) {
      const res = await fetch(`${base}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async command(token: string, line: string) {
      const res = await fetch(`${base}/command`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: line,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async events(token: string, query = 'wait=0') {
      const res = await fetch(`${base}/events?${query}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as { events: Record<string, unknown>[]; cursor: string; text?: string } };
    },
  };
  return { replica, ctx, clock, state, http };
}
