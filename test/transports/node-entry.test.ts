import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { root, startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';

const clients: TcpClient[] = [];
const servers: RunningServer[] = [];
const redises: RedisServer[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(redises.map((r) => r.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Long-polls parked on the server now, from GET /metrics on its metrics listener. */
async function parkedPolls(server: RunningServer): Promise<number> {
  const m = /^im_parked_polls (\S+)$/m.exec(await (await fetch(`${server.metrics}/metrics`)).text());
  if (!m) throw new Error('no im_parked_polls in /metrics');
  return Number(m[1]);
}

async function login(server: RunningServer, user: string, password: string) {
  const client = await TcpClient.open(server.tcpPort);
  clients.push(client);
  const reply = await client.command(`login ${user} ${password}`);
  return { client, reply };
}

describe('npm start arguments', () => {
  it('takes port, block_duration, timeout and a credentials file, and times out idle users', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'im-creds-'));
    dirs.push(dir);
    const file = join(dir, 'other.txt');
    writeFileSync(file, 'ana secret1\r\n\nbad line here\nbo secret2   \n');
    const server = await startServer({ positional: ['3', '4'], args: ['--credentials', file] });
    servers.push(server);
    expect(server.output()).toContain(`TCP 127.0.0.1:${server.tcpPort} and HTTP 127.0.0.1:${server.httpPort}`);
    expect(server.output()).toContain('block_duration 3s, timeout 4s');
    expect(server.output()).toContain('everything in it is lost when the server exits');
    // Log entries are JSON lines (pino): the report is one entry's message.
    const messages = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => String((JSON.parse(line) as { msg?: string }).msg));
    expect(messages.some((m) => m.endsWith('other.txt line 3: expected "username password"; skipped')), messages.join('\n')).toBe(true);
    const ana = await login(server, 'ana', 'secret1');
    expect(ana.reply).toMatchObject({ ok: true });
    const bo = await login(server, 'bo', 'secret2');
    expect(bo.reply).toMatchObject({ ok: true });
    // ana stays active; bo says nothing and is logged out after about 4 s.
    const keepAlive = setInterval(() => ana.client.send('whoelse'), 1000);
    try {
      const end = await bo.client.waitFor((m) => m.type === 'session_end', 15_000);
      expect(end).toMatchObject({ reason: 'timeout' });
      await ana.client.waitFor((m) => m.text === 'bo logged out', 5000);
    } finally {
      clearInterval(keepAlive);
    }
  });

  it('on the embedded store without --host, listens on loopback only and says how to open it up', async () => {
    const server = await startServer({ host: null });
    servers.push(server);
    expect(server.output()).toContain(`TCP 127.0.0.1:${server.tcpPort} and HTTP 127.0.0.1:${server.httpPort}`);
    expect(server.output()).toContain('Listening on loopback only: --host 0.0.0.0 opens it to other machines');
    const client = await TcpClient.open(server.tcpPort);
    clients.push(client);
    expect(await client.command('ping')).toEqual({ type: 'pong' });
  });

  it('prints the usage and exits 2 on a wrong argument', async () => {
    const child = spawn(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'entries', 'node.ts'), 'notaport'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('port must be a non-negative integer');
    expect(stderr).toContain('Usage: npm start -- [port] [block_duration] [timeout]');
  });
});

describe('SIGTERM', () => {
  it('sends session_end (shutdown), answers parked polls and exits within a few seconds', async () => {
    const server = await startServer();
    const { client } = await login(server, 'yoda', 'wise');
    const http = await fetch(`${server.http}/login`, { method: 'POST', body: new URLSearchParams({ username: 'luke', password: 'sunrise' }) });
    const token = String(((await http.json()) as Record<string, unknown>).token);
    await fetch(`${server.http}/events?wait=0`, { headers: { authorization: `Bearer ${token}` } });
    const parked = fetch(`${server.http}/events?wait=30`, { headers: { authorization: `Bearer ${token}` } });
    await vi.waitFor(async () => expect(await parkedPolls(server)).toBe(1), { timeout: 10_000, interval: 20 });
    const started = Date.now();
    const stopping = server.stop();
    expect(await client.waitFor((m) => m.type === 'session_end')).toMatchObject({ reason: 'shutdown' });
    const answer = await parked;
    expect(answer.status).toBe(200);
    // Held polls are answered with the same notice TCP clients get.
    expect(((await answer.json()) as { events: unknown[] }).events).toMatchObject([{ type: 'session_end', reason: 'shutdown' }]);
    expect(await stopping).toBe(0);
    expect(Date.now() - started).toBeLessThan(6000);
  });
});

describe('on a real Redis', () => {
  it('keeps blocks, offline messages and login history across a server restart, and sessions resumable', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const env = { REDIS_URL: redis.url };
    const first = await startServer({ env });
    expect(first.output()).toContain(`State: Redis at ${redis.url}`);
    const yoda = await login(first, 'yoda', 'wise');
    const luke = await login(first, 'luke', 'sunrise');
    expect(await luke.client.command('block hans')).toMatchObject({ ok: true });
    expect(await luke.client.command('logout')).toMatchObject({ ok: true });
    expect(await yoda.client.command('message luke stored while you were away')).toMatchObject({ ok: true });
    await first.stop();

    const second = await startServer({ env, tcpPort: first.tcpPort, httpPort: first.httpPort });
    servers.push(second);
    // yoda's session survived: resume it on the new process.
    const again = await TcpClient.open(second.tcpPort);
    clients.push(again);
    expect(await again.command(`resume ${yoda.reply.token} ${yoda.reply.cursor}`)).toMatchObject({ ok: true });
    expect(await again.command('whoelsesince 60')).toMatchObject({ users: ['luke'] });
    const hans = await login(second, 'hans', 'falcon');
    expect(await hans.client.command('message luke hi')).toMatchObject({
      error: 'blocked',
      text: 'Your message could not be delivered as the recipient has blocked you',
    });
    const back = await login(second, 'luke', 'sunrise');
    expect(back.reply).toMatchObject({ ok: true });
    expect(await back.client.waitFor((m) => m.type === 'message')).toMatchObject({
      text: 'yoda: stored while you were away',
      offline: true,
    });
  });

  it('leaves the sessions of a killed server resumable on another one, missing nothing', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const env = { REDIS_URL: redis.url };
    const doomed = await startServer({ env });
    const survivor = await startServer({ env });
    servers.push(survivor);
    const luke = await login(doomed, 'luke', 'sunrise');
    const yoda = await login(survivor, 'yoda', 'wise');
    expect(await yoda.client.command('message luke one')).toMatchObject({ ok: true });
    const one = await luke.client.waitFor((m) => m.text === 'yoda: one');
    const pid = doomed.process.pid!;
    await doomed.kill();
    expect(() => process.kill(pid, 0)).toThrow();
    await luke.client.waitClosed();
    expect(await yoda.client.command('message luke two')).toMatchObject({ ok: true });
    const again = await TcpClient.open(survivor.tcpPort);
    clients.push(again);
    expect(await again.command(`resume ${luke.reply.token} ${one.id}`)).toMatchObject({ ok: true });
    expect(await again.waitFor((m) => m.type === 'message')).toMatchObject({ text: 'yoda: two' });
    expect(await again.command('whoelse')).toMatchObject({ users: ['yoda'] });
  });
});

describe('a replica killed mid-stream', () => {
  it('delivers every acknowledged direct message and broadcast exactly once after resuming on another replica', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const env = { REDIS_URL: redis.url, IM_COMMAND_RATE: '0' };
    const doomed = await startServer({ env });
    const survivor = await startServer({ env });
    servers.push(survivor);
    const luke = await login(doomed, 'luke', 'sunrise');
    const hans = await login(doomed, 'hans', 'falcon');
    const yoda = await login(survivor, 'yoda', 'wise');
    for (const who of [luke, hans]) expect(who.reply).toMatchObject({ ok: true });

    // yoda sends without pause while luke's and hans's replica dies.
    const acknowledged: string[] = [];
    let sending = true;
    const sender = (async () => {
      for (let k = 0; sending && k < 2000; k++) {
        const line = k % 3 === 0 ? `broadcast b${k}` : `message ${k % 3 === 1 ? 'luke' : 'hans'} d${k}`;
        const reply = await yoda.client.command(line);
        if (reply.ok) acknowledged.push(line);
      }
    })();
    await luke.client.waitFor((m) => m.type === 'broadcast' && m.text === 'yoda: b30', 20_000);
    await doomed.kill();
    await Promise.all([luke.client.waitClosed(), hans.client.waitClosed()]);

    // Each client resumes on the survivor from the last event it saw.
    const resumed = await Promise.all(
      [luke, hans].map(async (who) => {
        const last = [...who.client.received].reverse().find((m) => typeof m.id === 'string');
        const again = await TcpClient.open(survivor.tcpPort);
        clients.push(again);
        expect(await again.command(`resume ${String(who.reply.token)} ${String(last?.id ?? who.reply.cursor)}`)).toMatchObject({ ok: true });
        return again;
      }),
    );
    // Keep sending across the resumes: stop once 30 more have been acknowledged.
    const resumedAt = acknowledged.length;
    await vi.waitFor(() => expect(acknowledged.length).toBeGreaterThanOrEqual(resumedAt + 30), { timeout: 20_000, interval: 20 });
    sending = false;
    await sender;
    const lastLine = acknowledged.at(-1)!;
    const expectedFor = (user: string) =>
      acknowledged.filter((l) => l.startsWith('broadcast') || l.startsWith(`message ${user} `)).map((l) => `yoda: ${l.split(' ').at(-1)}`);

    for (const [user, before, after] of [
      ['luke', luke.client, resumed[0]],
      ['hans', hans.client, resumed[1]],
    ] as const) {
      const wanted = expectedFor(user);
      await after.waitFor((m) => m.text === wanted.at(-1), 20_000);
      // De-duplicate by event id, as a client does across a resume.
      const seen = new Map<string, string>();
      for (const m of [...before.received, ...after.received]) {
        if ((m.type === 'message' || m.type === 'broadcast') && typeof m.id === 'string') seen.set(m.id, String(m.text));
      }
      // Exactly once each; in order within each stream (across the two, the
      // order is by event time, which ties within a millisecond).
      const got = [...seen.values()];
      const direct = (texts: string[]) => texts.filter((x) => x.startsWith('yoda: d'));
      const broadcasts = (texts: string[]) => texts.filter((x) => x.startsWith('yoda: b'));
      expect(got.length, `${user} after ${lastLine}`).toBe(wanted.length);
      expect(direct(got)).toEqual(direct(wanted));
      expect(broadcasts(got)).toEqual(broadcasts(wanted));
    }
  }, 60_000);
});
