import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Replica } from '../../transports/replica.js';
import { openState } from '../../state/connect.js';
import { startTestReplica } from '../support/replica.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { TcpClient } from '../support/tcp-client.js';

let redis: RedisServer;
let replica: Replica;
let admin: Redis;
const clients: TcpClient[] = [];

beforeAll(async () => {
  redis = await startRedis({ persistent: true });
  ({ replica } = await startTestReplica({}, { sweepIntervalMs: 1000 }, { store: openState(redis.url).state, realClock: true }));
  admin = new Redis(redis.url);
  admin.on('error', () => undefined); // expected while the server is halted
});

afterAll(async () => {
  for (const c of clients) c.close();
  admin?.disconnect();
  await replica?.close();
  await redis?.stop();
});

async function login(user: string, password: string) {
  const client = await TcpClient.open(replica.tcpPort);
  clients.push(client);
  expect(await client.command(`login ${user} ${password}`)).toMatchObject({ ok: true });
  return client;
}

describe('when the state store falters', () => {
  it('loses no event when the wake-up subscriber is disconnected', async () => {
    const luke = await login('luke', 'sunrise');
    const yoda = await login('yoda', 'wise');
    await admin.client('KILL', 'TYPE', 'pubsub');
    // Sent while the subscriber reconnects: its wake-up may be lost, the event is not.
    expect(await yoda.command('message luke during the gap')).toMatchObject({ ok: true });
    expect(await luke.waitFor((m) => m.type === 'message')).toMatchObject({ text: 'yoda: during the gap' });
  });

  it('answers unavailable while Redis is down, and serves again when it is back', async () => {
    const hans = await login('hans', 'falcon');
    await redis.halt();
    const reply = await hans.command('whoelse', 20_000);
    expect(reply).toMatchObject({ ok: false, error: 'unavailable', text: 'Error. The service is unavailable. Please try again later' });
    const ready = await fetch(`http://127.0.0.1:${replica.httpPort}/readyz`);
    expect(ready.status).toBe(503);
    await redis.restart();
    await expect
      .poll(async () => (await hans.command('whoelse')).ok, { timeout: 20_000, interval: 200 })
      .toBe(true);
    expect((await fetch(`http://127.0.0.1:${replica.httpPort}/readyz`)).status).toBe(200);
  });
});
