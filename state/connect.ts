import { Cluster, Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { RedisState } from './redis.js';

/**
 * Opens the state store: a Redis URL, a comma-separated list of cluster node
 * URLs, or (no URL) the embedded in-process store on ioredis-mock, whose
 * contents are lost when the process exits.
 */
export function openState(url?: string): { state: RedisState; embedded: boolean } {
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
    return { state: new RedisState(new Cluster(nodes, options), new Cluster(nodes, options)), embedded: false };
  }
  // Commands issued in the same tick share one round trip (auto-pipelining);
  // a command fails after two reconnect attempts instead of waiting forever,
  // so a Redis outage becomes an `unavailable` reply rather than a hang.
  const redis = new Redis(urls[0], { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  return { state: new RedisState(redis, redis.duplicate()), embedded: false };
}
