import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../state/keys.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';

/*
 * Two replicas on a three-node Redis Cluster, given the seed list of SPEC
 * section 7 in REDIS_URL: a TCP user on each, and every cross-replica rule
 * the wake-ups carry (direct messages, presence, broadcast with a block,
 * whoelse) holds across them, with users' keys and the lobby on different
 * nodes.
 */
let cluster: RedisCluster;
let replicas: RunningServer[] = [];
const clients: TcpClient[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  replicas = await Promise.all(
    [0, 1].map(() => startServer({ positional: ['60', '120'], env: { REDIS_URL: cluster.url } })),
  );
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await cluster?.stop();
});

async function login(replica: RunningServer, user: string, password: string): Promise<TcpClient> {
  const client = await TcpClient.open(replica.tcpPort);
  clients.push(client);
  expect(await client.command(`login ${user} ${password}`)).toMatchObject({ ok: true, text: 'Welcome to the greatest messaging application ever!' });
  return client;
}

describe('two replicas on a Redis Cluster (seed-list REDIS_URL)', () => {
  it('the users and the lobby this test uses live on different nodes', async () => {
    const nodes = new Set(await Promise.all([keys.user('yoda'), keys.user('luke'), keys.user('hans'), keys.lobby].map((k) => cluster.nodeOf(k))));
    expect(nodes.size).toBeGreaterThanOrEqual(2);
    for (const replica of replicas) expect(replica.output()).toContain(`State: Redis at ${cluster.url}`);
  });

  it('messages, presence, a broadcast and whoelse across the replicas', async () => {
    const yoda = await login(replicas[0], 'yoda', 'wise');
    const luke = await login(replicas[1], 'luke', 'sunrise');
    await yoda.waitFor((m) => m.type === 'presence' && m.text === 'luke logged in');
    const hans = await login(replicas[1], 'hans', 'falcon');
    await yoda.waitFor((m) => m.text === 'hans logged in');
    await luke.waitFor((m) => m.text === 'hans logged in');

    expect(await yoda.command('message luke Hey Dude')).toMatchObject({ ok: true });
    expect(await luke.waitFor((m) => m.type === 'message')).toMatchObject({ from: 'yoda', text: 'yoda: Hey Dude', offline: false });
    expect(await luke.command('message yoda Hi yoda')).toMatchObject({ ok: true });
    expect(await yoda.waitFor((m) => m.type === 'message')).toMatchObject({ from: 'luke', text: 'luke: Hi yoda' });

    // hans (on the other replica, his keys in another slot) blocks yoda: yoda's
    // broadcast reaches luke, not hans, and yoda is told.
    expect(await hans.command('block yoda')).toMatchObject({ ok: true });
    expect(await yoda.command('broadcast hello everyone')).toMatchObject({
      ok: true,
      text: 'Your message could not be delivered to some recipients',
    });
    expect(await luke.waitFor((m) => m.type === 'broadcast')).toMatchObject({ text: 'yoda: hello everyone' });
    expect(await luke.command('broadcast marker')).toMatchObject({ ok: true });
    // The marker reaches each replica on its own wake-up: wait for both.
    await hans.waitFor((m) => m.type === 'broadcast' && m.text === 'luke: marker');
    await yoda.waitFor((m) => m.type === 'broadcast' && m.text === 'luke: marker');
    expect(hans.received.filter((m) => m.type === 'broadcast').map((m) => m.text)).toEqual(['luke: marker']);
    expect(yoda.received.filter((m) => m.type === 'broadcast').map((m) => m.text)).toEqual(['luke: marker']);

    // whoelse, the same from both replicas (hans has blocked yoda, so yoda does not see him).
    expect(await yoda.command('whoelse')).toMatchObject({ ok: true, users: ['luke'] });
    expect(await luke.command('whoelse')).toMatchObject({ ok: true, users: ['yoda', 'hans'] });

    expect(await luke.command('logout')).toMatchObject({ ok: true });
    await yoda.waitFor((m) => m.text === 'luke logged out');
    await hans.waitFor((m) => m.text === 'luke logged out');
    expect(await yoda.command('whoelse')).toMatchObject({ ok: true, users: [] });

    // An offline message, stored on luke's node, waits for his next login on the other replica.
    expect(await yoda.command('message luke while you were away')).toMatchObject({ ok: true });
    const again = await login(replicas[0], 'luke', 'sunrise');
    expect(await again.waitFor((m) => m.type === 'message')).toMatchObject({ text: 'yoda: while you were away', offline: true });
  });
});
