import { Cluster, Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { RedisState } from './redis.js';

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
 * Opens the state store: a Redis URL, a comma-separated list of cluster node
 * URLs, or (no URL) the embedded in-process store on ioredis-mock, whose
 * contents are lost when the process exits.
 */
export function openState(url?: string, log: StoreLog = () => undefined): { state: RedisState; embedded: boolean } {
  if (!url) {
    const redis = new RedisMock();
    return { state: new RedisState(redis, redis.duplicate()), embedded: true };
  }
  const urls = url.split(',').map((u) => u.trim()).filter(Boolean);
  if (urls.length > 1) {
    const nodes = urls.map((u) => {
      const parsed = new URL(u);
      return { host: parsed.hostname, port: Number(parsed.port || 6379) };
    });
    const options = { enableAutoPipelining: true, redisOptions: { maxRetriesPerRequest: 2 } };
    const [commands, subscriber] = [new Cluster(nodes, options), new Cluster(nodes, options)];
    reportErrors(commands, 'command', log);
    reportErrors(subscriber, 'subscriber', log);
    return { state: new RedisState(commands, subscriber), embedded: false };
  }
  // Commands issued in the same tick share one round trip (auto-pipelining);
  // a command fails after two reconnect attempts instead of waiting forever,
  // so a Redis outage becomes an `unavailable` reply rather than a hang.
  const redis = new Redis(urls[0], { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  const subscriber = redis.duplicate();
  reportErrors(redis, 'command', log);
  reportErrors(subscriber, 'subscriber', log);
  return { state: new RedisState(redis, subscriber), embedded: false };
}
