import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { importUsers } from '../../handlers/users.js';
import { createLogger } from '../../entries/log.js';
import { parsePrometheus, sampleValue } from '../support/prometheus.js';
import { startTestReplica } from '../support/replica.js';
import { TcpClient } from '../support/tcp-client.js';

/**
 * What an operator relies on (docs/OPERATIONS.md): metrics that move with
 * the traffic, logs without secrets, limits named before a close, and no
 * crash when the store fails under a connection.
 */

type Replica = Awaited<ReturnType<typeof startTestReplica>>;
let t: Replica;
const clients: TcpClient[] = [];
const logLines: string[] = [];

beforeAll(async () => {
  t = await startTestReplica({ commandRate: 0 }, { byteRate: 2000, byteBurst: 4000, lineTimeoutMs: 400 }, { realClock: true });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  t.ctx.log = createLogger('debug', sink);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await t.replica.close();
});

async function open(): Promise<TcpClient> {
  const client = await TcpClient.open(t.replica.tcpPort);
  clients.push(client);
  return client;
}

async function scrape() {
  const res = await fetch(`${t.http.metrics}/metrics`);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parsePrometheus(await res.text());
}

describe('metrics', () => {
  it('parse as Prometheus text, and the counters move as commands run', async () => {
    const before = await scrape();
    const client = await open();
    expect(await client.command('login yoda not-the-password')).toMatchObject({ error: 'invalid_password' });
    expect(await client.command('login yoda wise')).toMatchObject({ ok: true });
    expect(await client.command('whoelse')).toMatchObject({ ok: true });
    expect(await client.command('nonsense')).toMatchObject({ error: 'invalid_command' });
    const login = await t.http.login('luke', 'sunrise');
    await client.waitFor((m) => m.text === 'luke logged in');
    expect((await t.http.command(String(login.body.token), 'whoelse')).status).toBe(200);
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(moved('im_commands_total', { verb: 'whoelse', outcome: 'ok', transport: 'tcp' })).toBe(1);
    expect(moved('im_commands_total', { verb: 'whoelse', outcome: 'ok', transport: 'http' })).toBe(1);
    expect(moved('im_commands_total', { verb: 'unknown', outcome: 'invalid_command', transport: 'tcp' })).toBe(1);
    expect(moved('im_login_failures_total', { reason: 'invalid_password' })).toBe(1);
    expect(moved('im_command_duration_seconds_count', { transport: 'tcp' })).toBe(4);
    expect(moved('im_events_delivered_total', { transport: 'tcp' })).toBeGreaterThanOrEqual(1);
    expect(moved('im_wakeups_total', { stream: 'lobby' })).toBeGreaterThanOrEqual(1);
    expect(moved('im_redis_script_duration_seconds_count', { script: 'openSession', outcome: 'ok' })).toBe(2);
    expect(sampleValue(after, 'im_tcp_sessions')).toBeGreaterThanOrEqual(1);
    // The default process metrics are there too.
    expect(after.some((s) => s.name === 'im_nodejs_eventloop_lag_seconds')).toBe(true);
    expect(after.some((s) => s.name === 'im_nodejs_heap_size_used_bytes')).toBe(true);
    await client.command('logout');
    await t.http.command(String(login.body.token), 'logout');
  });
});

describe('login locks', () => {
  it('the failure that locks an account is counted once in im_login_locks_total, the others not', async () => {
    // A user of its own: a locked account must not lock out the other tests' users.
    await importUsers(t.ctx, [{ user: 'chewy', password: 'wookie' }]);
    const before = await scrape();
    // Over HTTP: three failed logins close a TCP connection, and the counts are the same either way.
    for (const guess of ['one', 'two', 'three']) expect((await t.http.login('chewy', guess)).status).toBe(401);
    expect((await t.http.login('chewy', 'four')).status).toBe(403);
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(moved('im_login_locks_total', { kind: 'account' })).toBe(1);
    expect(moved('im_login_failures_total', { reason: 'invalid_password' })).toBe(3);
    expect(moved('im_login_failures_total', { reason: 'account_blocked' })).toBe(1);
  });
});

describe('logs', () => {
  it('redact fields named password or token, at the top and one level down, in both formats', () => {
    for (const format of ['json', 'text'] as const) {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString('utf8'));
          done();
        },
      });
      createLogger('info', sink, format)('info', 'an entry', { password: 'pw-111', token: 'tk-222', session: { token: 'tk-333', user: 'yoda' } });
      const written = lines.join('');
      expect(written, format).toContain('[redacted]');
      expect(written, format).toContain('yoda');
      for (const secret of ['pw-111', 'tk-222', 'tk-333']) expect(written, `${format}: ${secret}`).not.toContain(secret);
    }
  });

  it('are JSON lines with level and fields, one per command at debug, and never hold a password or a token', async () => {
    logLines.length = 0;
    const client = await open();
    expect(await client.command('login hans wrong-secret-1234')).toMatchObject({ error: 'invalid_password' });
    const reply = await client.command('login hans falcon');
    const token = String(reply.token);
    await client.command(`message leia a private text 5678`);
    await client.command('logout');
    const http = await t.http.login('leia', 'alderaan');
    await t.http.command(String(http.body.token), 'logout');
    await vi.waitFor(() => expect(logLines.some((l) => l.includes('"verb":"logout"'))).toBe(true), { timeout: 5000, interval: 20 });
    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries.find((e) => e.verb === 'login' && e.outcome === 'invalid_password')).toMatchObject({
      level: 'debug',
      msg: 'command',
      transport: 'tcp',
      replica: expect.any(String),
      ms: expect.any(Number),
    });
    const all = logLines.join('\n');
    for (const secret of ['wrong-secret-1234', 'falcon', 'alderaan', token, token.split(':')[1], String(http.body.token), 'private text 5678']) {
      expect(all, `the logs contain ${secret}`).not.toContain(secret);
    }
  });
});

describe('limits are named before a close', () => {
  it('a client over the byte rate gets rate_limited, then the connection closes', async () => {
    const client = await open();
    // Burst 4000 bytes at 2000/s: 12 KB at once is over.
    client.socket.write(`${'whoelse\n'.repeat(1500)}`);
    await client.waitClosed();
    expect(client.received.at(-1)).toMatchObject({ type: 'reply', ok: false, error: 'rate_limited' });
    const metrics = await scrape();
    expect(sampleValue(metrics, 'im_connections_closed_total', { reason: 'byte_rate' })).toBeGreaterThanOrEqual(1);
  });

  it('a line left unfinished gets too_long naming the time limit, then the connection closes', async () => {
    const client = await open();
    client.socket.write('login yoda wi');
    await client.waitClosed();
    expect(client.received.at(-1)).toMatchObject({
      ok: false,
      error: 'too_long',
      text: 'Error. Line not finished within 0.4 s. The connection is closed',
    });
  });
});

describe('no crash path', () => {
  it('a wake-up subscription that fails after login closes that connection only, and the session resumes', async () => {
    const state = t.ctx.state;
    const watch = state.watch.bind(state);
    let failures = 0;
    // leia has not been served over TCP in this file, so her subscription is new.
    state.watch = async (user: string) => {
      if (user === 'leia' && failures === 0) {
        failures++;
        throw new Error('injected subscription failure');
      }
      return watch(user);
    };
    try {
      const client = await open();
      const reply = await client.command('login leia alderaan');
      expect(reply).toMatchObject({ ok: true });
      await client.waitClosed();
      expect(failures).toBe(1);
      // The replica is still serving, and the session is resumable.
      const again = await open();
      expect(await again.command(`resume ${String(reply.token)} ${String(reply.cursor)}`)).toMatchObject({ ok: true });
      const luke = await t.http.login('luke', 'sunrise');
      await t.http.command(String(luke.body.token), 'message leia still here');
      await again.waitFor((m) => m.text === 'luke: still here');
      expect(logLines.some((l) => l.includes('injected subscription failure'))).toBe(true);
      await again.command('logout');
      await t.http.command(String(luke.body.token), 'logout');
    } finally {
      state.watch = watch;
    }
  });
});
