import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { DriverStats, Target } from '../protocol.js';
import { DriverProcess } from './drivers.js';
import { sample, startRedis, startServer, type ProcSample, type RedisProcess, type ServerProcess } from './processes.js';
import { progress } from './progress.js';
import { createUsers } from './users.js';

/** What a load phase needs of where it runs: ours (server and Redis) or a peer XMPP server (bench/runner/peers.ts). */
export interface LoadEnvironment {
  drivers: DriverProcess[];
  /** RSS and CPU of the serving process(es). */
  serverSample(): ProcSample;
  /** Redis's, where there is one (a peer has none). */
  redisSample(): ProcSample | null;
  driverStats(): Promise<DriverStats[]>;
}

/** What one scenario runs against: its own Redis, its own server, its own drivers. */
export interface Environment extends LoadEnvironment {
  redis: RedisProcess;
  server: ServerProcess;
  /** The runner's own connection to Redis, for INFO and user creation. */
  admin: Redis;
  target: Target;
  redisSample(): ProcSample;
}

export interface EnvironmentOptions {
  serverRoot: string;
  /** The node binary the server runs on. */
  serverNode: string;
  users: string[];
  drivers: number;
  runId: string;
  timeoutSeconds: number;
  /** Where the server writes a CPU profile when it exits ('' = none). */
  profileDir: string;
}

/**
 * Starts a fresh environment, runs `body` in it and stops every process it
 * started (by PID) whatever happens. A scenario never sees another's state.
 */
export async function withEnvironment<T>(options: EnvironmentOptions, body: (env: Environment) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'im-bench-'));
  const credentials = join(dir, 'credentials.txt');
  writeFileSync(credentials, '');
  let redis: RedisProcess | null = null;
  let server: ServerProcess | null = null;
  let admin: Redis | null = null;
  const drivers: DriverProcess[] = [];
  try {
    for (let i = 0; i < options.drivers; i++) drivers.push(DriverProcess.fork(i));
    redis = await startRedis(dir);
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: false });
    progress(`  redis-server pid ${redis.pid} on port ${redis.port}; creating ${options.users.length} users`);
    await createUsers(admin, options.users);
    server = await startServer(options.serverRoot, options.serverNode, redis.url, credentials, options.timeoutSeconds, options.profileDir);
    progress(`  server pid ${server.pid} on TCP ${server.tcpPort}, HTTP ${server.httpPort}`);
    const target: Target = { host: '127.0.0.1', tcpPort: server.tcpPort, httpPort: server.httpPort };
    await Promise.all(drivers.map((d) => d.init(target, options.runId)));
    const s = server;
    const r = redis;
    return await body({
      redis: r,
      server: s,
      admin,
      drivers,
      target,
      serverSample: () => sample(s.pid),
      redisSample: () => sample(r.pid),
      driverStats: () => Promise.all(drivers.map((d) => d.call('stats', {}, 30_000))),
    });
  } finally {
    for (const d of drivers) await d.stop();
    // A profiled server writes its profile as it exits, which takes seconds after a long run.
    if (server) await server.stop(options.profileDir ? 60_000 : undefined);
    admin?.disconnect();
    if (redis) await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Splits `count` connections over the fewest drivers that keep each under `perDriver`. */
export function driversFor(count: number, perDriver: number): number {
  return Math.max(1, Math.ceil(count / Math.max(1, perDriver)));
}
