import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { createRequire } from 'node:module';
import { RedisState } from './redis.js';

const require = createRequire(import.meta.url);

/** Milliseconds a command may take before it fails (a store that does not answer). */
const commandTimeout = 1500;

/** Where connection trouble is reported; the default keeps quiet. */
export type StoreLog = (message: string) => void;

/**
 * Reports a client's connection errors once per distinct error and at most
 * every 10 s, instead of one line per reconnect attempt.
 */
function reportErrors(client: Redis | Cluster, role: string, log: StoreLog): void {
  let last = '';
  let lastAt = 0;
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (err.message === last && now - lastAt < 10_000) return;
    last = err.message;
    lastAt = now;
    log(`state store ${role} connection: ${err.message}`);
  });
  client.on('ready', () => {
    if (last) log(`state store ${role} connection is back`);
    last = '';
  });
}

/**
 * The nodes of a cluster seed list (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`,
 * SPEC section 7): ioredis asks any of them for the slot map and finds the
 * others from it. Credentials and TLS (`rediss://`) come from the first URL
 * and hold for every node.
 */
function clusterSeeds(urls: string[]): { nodes: { host: string; port: number }[]; redisOptions: RedisOptions } {
  const parsed = urls.map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`not a Redis URL in the cluster seed list: ${u}`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`not a Redis URL in the cluster seed list: ${u}`);
    return url;
  });
  const first = parsed[0];
  return {
    nodes: parsed.map((url) => ({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 6379) })),
    // As for one Redis: a command fails after two reconnect attempts.
    redisOptions: {
      maxRetriesPerRequest: 2,
      commandTimeout,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
}

/**
 * Opens the state store: a Redis URL, a comma-separated list of cluster node
 * URLs, or (no URL) the embedded in-process store on ioredis-mock, whose
 * contents are lost when the process exits.
 */
export function openState(url?: string, log: StoreLog = () => undefined): { state: RedisState; embedded: boolean } {
  if (!url) {
    // Loaded only here: the mock and its Lua interpreter cost a replica on a
    // real Redis about 9 MiB of memory it would never use.
    const RedisMock = require('ioredis-mock') as typeof import('ioredis-mock');
    const redis = new RedisMock();
    return { state: new RedisState(redis, redis.duplicate()), embedded: true };
  }
  const urls = url.split(',').map((u) => u.trim()).filter(Boolean);
  if (urls.length > 1) {
    const { nodes, redisOptions } = clusterSeeds(urls);
    // Commands: auto-pipelined per node. Wake-ups: sharded pub/sub, one
    // subscriber connection per master, each subscribed to the channels of
    // its slots; kept apart from the commands, since an auto-pipelined
    // SSUBSCRIBE would go down a command connection.
    const commands = new Cluster(nodes, { enableAutoPipelining: true, redisOptions });
    const subscriber = new Cluster(nodes, { shardedSubscribers: true, redisOptions });
    reportErrors(commands, 'command', log);
    reportErrors(subscriber, 'subscriber', log);
    return { state: new RedisState(commands, subscriber, { sharded: true }), embedded: false };
  }
  // Commands issued in the same tick share one round trip (auto-pipelining);
  // a command fails after two reconnect attempts or `commandTimeout`,
  // whichever comes first, so a Redis outage becomes an `unavailable` reply
  // within two seconds rather than a hang.
  const redis = new Redis(urls[0], { enableAutoPipelining: true, maxRetriesPerRequest: 2, commandTimeout });
  // No ready check on the subscriber (ioredis's own sharded subscribers go
  // without one too): ioredis writes a SUBSCRIBE made while the connection's
  // handshake is in flight at once, and the ready check's INFO after it then
  // fails on a connection in subscriber mode, which is dropped with the
  // subscription that `watch` already reported made. Pub/sub needs no loaded
  // dataset, which is all the ready check waits for.
  const subscriber = redis.duplicate({ enableReadyCheck: false });
  reportErrors(redis, 'command', log);
  reportErrors(subscriber, 'subscriber', log);
  return { state: new RedisState(redis, subscriber), embedded: false };
}
