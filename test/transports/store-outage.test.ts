import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Replica } from '../../entries/replica.js';
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
    await luke.command('logout');
    await yoda.command('logout');
  });

  it('answers unavailable within 2 s on both transports and in /readyz while Redis is down, recovers within 10 s of its return, and loses no acknowledged message', async () => {
    const hans = await login('hans', 'falcon');
    const leia = await login('leia', 'alderaan');
    const http = `http://127.0.0.1:${replica.httpPort}`;
    const luke = (await (await fetch(`${http}/login`, { method: 'POST', body: new URLSearchParams({ username: 'luke', password: 'sunrise' }) })).json()) as Record<string, string>;
    const acknowledged: string[] = [];
    for (let k = 1; k <= 5; k++) {
      expect(await hans.command(`message leia before ${k}`), `before ${k}`).toMatchObject({ ok: true });
      acknowledged.push(`hans: before ${k}`);
    }
    await redis.halt();

    // Timed from the moment the request is sent until its answer is in.
    const within = async <T>(ms: number, send: () => Promise<T>): Promise<T> => {
      const sent = Date.now();
      const result = await send();
      expect(Date.now() - sent, 'answered in time').toBeLessThan(ms);
      return result;
    };
    expect(await within(2000, () => hans.command('whoelse', 20_000))).toMatchObject({
      ok: false,
      error: 'unavailable',
      text: 'Error. The service is unavailable. Please try again later',
    });
    const command = await within(2000, () =>
      fetch(`${http}/command`, { method: 'POST', headers: { authorization: `Bearer ${luke.token}` }, body: 'whoelse' }),
    );
    expect(command.status).toBe(503);
    expect((await within(2000, () => fetch(`${http}/readyz`))).status).toBe(503);

    await redis.restart();
    const back = Date.now();
    await expect.poll(async () => (await hans.command('whoelse')).ok, { timeout: 20_000, interval: 100 }).toBe(true);
    await expect.poll(async () => (await fetch(`${http}/readyz`)).status, { timeout: 20_000, interval: 100 }).toBe(200);
    expect(Date.now() - back, 'recovered within 10 s of Redis coming back').toBeLessThan(10_000);
    // Recovered means messages are acknowledged again, and those reach leia too.
    for (let k = 1; k <= 5; k++) {
      expect(await hans.command(`message leia after ${k}`), `after ${k}`).toMatchObject({ ok: true });
      acknowledged.push(`hans: after ${k}`);
    }
    // Everything acknowledged reaches leia, once and in order, resuming if her connection was cut.
    const texts = (client: TcpClient) => client.received.filter((m) => m.type === 'message').map((m) => m.text);
    if (leia.closed) {
      const last = [...leia.received].reverse().find((m) => typeof m.id === 'string');
      const token = String(leia.received.find((m) => m.cmd === 'login')?.token);
      const again = await TcpClient.open(replica.tcpPort);
      clients.push(again);
      expect(await again.command(`resume ${token} ${String(last?.id)}`)).toMatchObject({ ok: true });
      await again.waitFor((m) => m.text === 'hans: after 5', 20_000);
      expect([...texts(leia), ...texts(again)]).toEqual(acknowledged);
    } else {
      await leia.waitFor((m) => m.text === 'hans: after 5', 20_000);
      expect(texts(leia)).toEqual(acknowledged);
    }
  }, 60_000);
});
