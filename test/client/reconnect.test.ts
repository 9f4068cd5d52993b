import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { loginCli, stopClients, type Cli } from './cli.js';

/*
 * Reconnection (SPEC sections 2 and 7): the client resumes its session from
 * the last event it showed, so every event that arrived while it was away
 * shows once, and none twice. State lives in a real Redis so the session and
 * the inbox outlive the server process.
 */
let redis: RedisServer;
let server: RunningServer;
const others: RunningServer[] = [];
const sessions: TcpClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  server = await startServer({ positional: ['60', '120'], env: { REDIS_URL: redis.url } });
});

afterEach(async () => {
  for (const session of sessions.splice(0)) {
    if (!session.closed) await session.command('logout');
    session.close();
  }
  await stopClients();
});

afterAll(async () => {
  await server?.stop();
  for (const other of others) await other.stop();
  await redis?.stop();
});

/** Logs a user in over a raw TCP connection, to act while the clients are away. */
async function rawSession(port: number, user: string, password: string): Promise<TcpClient> {
  const client = await TcpClient.open(port);
  sessions.push(client);
  expect((await client.command(`login ${user} ${password}`)).ok).toBe(true);
  return client;
}

/** Every line of `expected` was shown exactly once, in this order. */
function expectOnceInOrder(cli: Cli, expected: string[]): void {
  for (const line of expected) expect(cli.count(line), `${cli.name}: ${line}\n${cli.output()}`).toBe(1);
  const positions = expected.map((line) => cli.lines().indexOf(line));
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
}

describe('reconnection', () => {
  it('after the server restarts, the client resumes and shows every missed event once', async () => {
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    await yoda.waitForLine('luke logged in');
    yoda.type('message luke Before the restart');
    await luke.waitForLine('yoda: Before the restart');
    yoda.type('startprivate luke');
    await luke.waitForLine('yoda would like to chat privately. Accept? (y/n)');
    luke.type('y');
    await yoda.waitForLine('Start private messaging with luke');

    // SIGTERM: the server tells its clients it is going; their sessions stay.
    const { tcpPort, httpPort } = server;
    await server.stop();
    await luke.waitForLine('The server is shutting down. Reconnecting...');
    await yoda.waitForLine('The server is shutting down. Reconnecting...');

    // While it is down, another replica on the same Redis carries on: hans
    // logs in and writes to luke, who is away but still logged in.
    const replica = await startServer({ positional: ['60', '120'], env: { REDIS_URL: redis.url } });
    others.push(replica);
    const hans = await rawSession(replica.tcpPort, 'hans', 'falcon');
    expect((await hans.command('message luke While you were away')).ok).toBe(true);
    expect((await hans.command('broadcast Anyone there?')).ok).toBe(true);

    server = await startServer({ positional: ['60', '120'], env: { REDIS_URL: redis.url }, tcpPort, httpPort });
    await luke.waitForLine('Reconnected.', 1, 30_000);
    await yoda.waitForLine('Reconnected.', 1, 30_000);
    await luke.waitForLine('hans: Anyone there?');
    await yoda.waitForLine('hans: Anyone there?');

    // Live again: through the server, and straight between the peers.
    yoda.type('message luke After the restart');
    await luke.waitForLine('yoda: After the restart');
    expect((await hans.command('message luke Last one')).ok).toBe(true);
    await luke.waitForLine('hans: Last one');
    yoda.type('private luke The private chat never needed the server');
    await luke.waitForLine('yoda(private): The private chat never needed the server');

    expectOnceInOrder(luke, [
      'yoda: Before the restart',
      'The server is shutting down. Reconnecting...',
      'Reconnected.',
      'hans logged in',
      'hans: While you were away',
      'hans: Anyone there?',
      'yoda: After the restart',
      'hans: Last one',
    ]);
    expectOnceInOrder(yoda, ['hans logged in', 'hans: Anyone there?']);
    // The server announced the shutdown, so no second "lost" notice.
    expect(luke.count('Connection lost. Reconnecting...')).toBe(0);
  });

  it('after the connection drops without warning, it says so, resumes and shows every missed event once', async () => {
    const proxy = await dropProxy(server.tcpPort);
    try {
      const luke = await loginCli(proxy.port, 'luke', 'sunrise');
      const hans = await rawSession(server.tcpPort, 'hans', 'falcon');
      await luke.waitForLine('hans logged in');
      expect((await hans.command('message luke One')).ok).toBe(true);
      await luke.waitForLine('hans: One');

      proxy.drop();
      await luke.waitForLine('Connection lost. Reconnecting...');
      expect((await hans.command('message luke Two')).ok).toBe(true);
      expect((await hans.command('message luke Three')).ok).toBe(true);
      proxy.restore();

      await luke.waitForLine('Reconnected.', 1, 30_000);
      await luke.waitForLine('hans: Three');
      expect((await hans.command('message luke Four')).ok).toBe(true);
      await luke.waitForLine('hans: Four');
      expectOnceInOrder(luke, [
        'hans logged in',
        'hans: One',
        'Connection lost. Reconnecting...',
        'Reconnected.',
        'hans: Two',
        'hans: Three',
        'hans: Four',
      ]);
    } finally {
      await stopClients();
      await proxy.close();
    }
  });
});

describe('a session the server no longer has', () => {
  it('after a restart on the embedded store: says the session ended, one "Error." a line, and logs in again on the same server', async () => {
    let embedded = await startServer({ positional: ['60', '120'] });
    others.push(embedded);
    try {
      const hans = await loginCli(embedded.tcpPort, 'hans', 'falcon');
      const { tcpPort, httpPort } = embedded;
      await embedded.stop();
      await hans.waitForLine('The server is shutting down. Reconnecting...');
      // Typed while the server is away: meant for a session that will be gone.
      hans.type('message luke Typed while the server was down');
      hans.type('whoelse');

      embedded = await startServer({ positional: ['60', '120'], tcpPort, httpPort });
      others.push(embedded);
      await hans.waitForLine('Error. You are not logged in', 1, 30_000);
      await hans.waitForLine('The session could not be resumed, so it has ended. Please log in again.');
      await hans.waitForLine('"message" was not sent: the session had ended');
      await hans.waitForLine('"whoelse" was not sent: the session had ended');
      // The login dialogue again, on the same client and server; the lines typed meanwhile are not its answers.
      await hans.waitForText('Username: ', 2);
      hans.type('hans');
      await hans.waitForText('Password: ', 2);
      hans.type('falcon');
      await hans.waitForLine('Welcome to the greatest messaging application ever!', 2);

      const luke = await loginCli(embedded.tcpPort, 'luke', 'sunrise');
      await hans.waitForLine('luke logged in');
      hans.type('message luke After logging in again');
      await luke.waitForLine('hans: After logging in again');
      expect(luke.output()).not.toContain('Typed while the server was down');
      expect(hans.lines().filter((line) => line.split('Error.').length > 2)).toEqual([]);
      expect(hans.running).toBe(true);
    } finally {
      await stopClients();
      await embedded.stop();
    }
  });
});

/**
 * A TCP proxy in front of the server that can cut every connection through
 * it and refuse new ones for a while: a network drop the server never sees
 * coming, so it sends no session_end.
 */
async function dropProxy(target: number): Promise<{ port: number; drop(): void; restore(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    drop() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cut = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
