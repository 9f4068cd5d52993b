import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { startBrowser, type RunningBrowser } from './browser.js';
import { closeUsers, WebUser } from './pages.js';

/*
 * SPEC section 8: the page reconnects by itself with its cursor after a
 * replica restart, with nothing lost or repeated. State lives in a real
 * Redis, so the sessions and inboxes outlive the server process.
 */
const args = ['--command-rate', '0', '--login-rate', '0'];
let redis: RedisServer;
let server: RunningServer;
let browser: RunningBrowser;
const others: RunningServer[] = [];
const webUsers: WebUser[] = [];
const tcpUsers: TcpClient[] = [];

beforeAll(async () => {
  [redis, browser] = await Promise.all([startRedis(), startBrowser()]);
  server = await startServer({ args, env: { REDIS_URL: redis.url } });
});

afterEach(async () => {
  for (const client of tcpUsers.splice(0)) {
    if (!client.closed) await client.command('logout').catch(() => undefined);
    client.close();
  }
  // Last: fails the test if a page logged an error it did not expect.
  await closeUsers(webUsers.splice(0), server.http);
});

afterAll(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
    for (const other of others) await other.stop();
    await redis?.stop();
  }
});

async function web(username: string, password: string): Promise<WebUser> {
  const user = await WebUser.open(browser.browser, server.http);
  webUsers.push(user);
  await user.login(username, password);
  return user;
}

async function tcp(port: number, username: string, password: string): Promise<TcpClient> {
  const client = await TcpClient.open(port);
  tcpUsers.push(client);
  expect(await client.command(`login ${username} ${password}`)).toMatchObject({ ok: true });
  return client;
}

/** Each of `expected` shows exactly once, in this order. */
async function expectOnceInOrder(user: WebUser, expected: string[]): Promise<void> {
  const lines = await user.lines();
  for (const text of expected) expect(lines.filter((line) => line === text).length, `${text}\n${lines.join('\n')}`).toBe(1);
  const positions = expected.map((text) => lines.indexOf(text));
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
}

describe('a server restart on a real Redis', () => {
  it('the page carries on from its cursor: nothing lost, nothing repeated', async () => {
    const yoda = await web('yoda', 'wise');
    const luke = await web('luke', 'sunrise');
    await yoda.person('luke').waitFor();
    await yoda.type('Before the restart', 'luke');
    await luke.line('yoda: Before the restart').waitFor();

    // SIGTERM: held polls are answered, then the port is gone.
    const { tcpPort, httpPort } = server;
    await server.stop();
    await yoda.line('Connection lost. Reconnecting...').waitFor();
    await luke.line('Connection lost. Reconnecting...').waitFor();

    // Meanwhile another replica on the same Redis carries on.
    const replica = await startServer({ args, env: { REDIS_URL: redis.url } });
    others.push(replica);
    const obiwan = await tcp(replica.tcpPort, 'obiwan', 'kenobi');
    expect(await obiwan.command('message luke While you were away')).toMatchObject({ ok: true });
    expect(await obiwan.command('message yoda Still there?')).toMatchObject({ ok: true });
    expect(await obiwan.command('broadcast Anyone there?')).toMatchObject({ ok: true, text: '' });

    server = await startServer({ args, env: { REDIS_URL: redis.url }, tcpPort, httpPort });
    for (const page of [yoda, luke]) {
      await page.line('Reconnected.').waitFor({ timeout: 30_000 });
      await page.line('obiwan: Anyone there?').waitFor();
      await page.person('obiwan').waitFor();
    }
    await yoda.type('After the restart', 'luke');
    await luke.line('yoda: After the restart').waitFor();
    await yoda.line('obiwan: Still there?').waitFor();

    await expectOnceInOrder(luke, [
      'yoda: Before the restart',
      'Connection lost. Reconnecting...',
      'obiwan logged in',
      'obiwan: While you were away',
      'obiwan: Anyone there?',
      'yoda: After the restart',
    ]);
    await expectOnceInOrder(yoda, ['> message luke Before the restart', 'obiwan logged in', 'obiwan: Still there?', 'obiwan: Anyone there?']);
    expect([...yoda.errors, ...luke.errors]).toEqual([]);
  }, 120_000);
});
