import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { httpApi, startWorker, type RunningWorker } from './wrangler.js';

/**
 * A Node replica and the Worker on one Redis (ARCHITECTURE.md, "Embedded
 * default and real deployments"): a TCP user on the replica and an HTTP user
 * on the Worker are in one chat.
 */

let redis: RedisServer;
let node: RunningServer;
let worker: RunningWorker;
const clients: TcpClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  // The replica seeds the users from credentials.txt; the Worker reads them from the store.
  [node, worker] = await Promise.all([
    startServer({ positional: ['60', '120'], env: { REDIS_URL: redis.url } }),
    startWorker({ REDIS_URL: redis.url, IM_POLL_INTERVAL: '100' }),
  ]);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all([worker?.stop(), node?.stop()]);
  await redis?.stop();
});

async function tcpLogin(user: string, password: string): Promise<TcpClient> {
  const client = await TcpClient.open(node.tcpPort);
  clients.push(client);
  expect(await client.command(`login ${user} ${password}`)).toMatchObject({ ok: true });
  return client;
}

/** An HTTP user on the Worker, polling with the last cursor it got; every event it was given, in order. */
async function httpLogin(user: string, password: string) {
  const api = httpApi(worker.base);
  const { status, body } = await api.login(user, password);
  expect(status, JSON.stringify(body)).toBe(200);
  const token = String(body.token);
  let cursor = String(body.cursor);
  const received: Record<string, any>[] = [];
  return {
    token,
    received,
    command: async (line: string) => (await api.command(token, line)).body,
    /** Polls until an event matches (each event is kept once: ids never repeat). */
    async waitFor(match: (e: Record<string, any>) => boolean, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`timed out; received ${JSON.stringify(received)}`);
        const { body: page } = await api.events(token, `after=${cursor}&wait=5`);
        for (const e of page.events) expect(received.map((r) => r.id)).not.toContain(e.id);
        received.push(...page.events);
        cursor = page.cursor;
      }
    },
  };
}

describe('a Node replica and the Worker on one Redis', () => {
  it('a TCP user and an HTTP user message each other, see presence and broadcasts, and whoelse agrees', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const luke = await httpLogin('luke', 'sunrise');
    await yoda.waitFor((m) => m.type === 'presence' && m.text === 'luke logged in');

    expect(await yoda.command('message luke Hey Dude')).toMatchObject({ ok: true, text: '' });
    expect(await luke.waitFor((e) => e.type === 'message')).toMatchObject({ from: 'yoda', text: 'yoda: Hey Dude', offline: false });
    expect(await luke.command('message yoda hello from the Worker')).toMatchObject({ ok: true });
    expect(await yoda.waitFor((m) => m.type === 'message')).toMatchObject({ text: 'luke: hello from the Worker' });

    expect(await yoda.command('broadcast hi from Node')).toMatchObject({ ok: true, text: '' });
    expect(await luke.waitFor((e) => e.type === 'broadcast')).toMatchObject({ text: 'yoda: hi from Node' });
    expect(await luke.command('broadcast hi from the Worker')).toMatchObject({ ok: true, text: '' });
    expect(await yoda.waitFor((m) => m.type === 'broadcast')).toMatchObject({ text: 'luke: hi from the Worker' });

    const hans = await tcpLogin('hans', 'falcon');
    await luke.waitFor((e) => e.text === 'hans logged in');
    expect(await yoda.command('whoelse')).toMatchObject({ users: ['luke', 'hans'] });
    expect(await luke.command('whoelse')).toMatchObject({ users: ['yoda', 'hans'] });
    expect(await hans.command('whoelse')).toMatchObject({ users: ['yoda', 'luke'] });

    expect(await hans.command('logout')).toMatchObject({ ok: true });
    expect(await luke.waitFor((e) => e.type === 'presence' && e.state === 'out')).toMatchObject({ text: 'hans logged out', reason: 'logout' });
    expect(await luke.command('logout')).toMatchObject({ ok: true });
    expect(await yoda.waitFor((m) => m.text === 'luke logged out')).toMatchObject({ reason: 'logout' });
    expect(await yoda.command('whoelse')).toMatchObject({ users: [] });
    // Each presence event once on each side.
    expect(yoda.received.filter((m) => m.text === 'luke logged in')).toHaveLength(1);
    expect(luke.received.filter((e) => e.text === 'hans logged in')).toHaveLength(1);
  });
});
