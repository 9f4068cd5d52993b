import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startServer, type RunningServer } from '../support/server.js';
import { runUsersTool } from '../support/users-tool.js';
import { TcpClient } from '../support/tcp-client.js';

/*
 * Operator control (issue 21): removing a user, resetting a password, or
 * `users logout` ends that user's live session on whichever replica serves
 * it, TCP or long-poll, with a session_end that says why, and the token is
 * refused after. Two replicas on one real redis-server; the user tool runs
 * as an operator runs it, a process of its own.
 */
let redis: RedisServer;
let replicas: RunningServer[] = [];
const clients: TcpClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  replicas = await Promise.all([0, 1].map(() => startServer({ env: { REDIS_URL: redis.url } })));
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await redis?.stop();
});

function usersTool(...args: string[]): Promise<{ code: number | null; out: string }> {
  return runUsersTool({ REDIS_URL: redis.url }, args);
}

async function tcpLogin(user: string, password: string): Promise<{ client: TcpClient; token: string; cursor: string }> {
  const client = await TcpClient.open(replicas[0].tcpPort);
  clients.push(client);
  const reply = await client.command(`login ${user} ${password}`);
  expect(reply).toMatchObject({ ok: true });
  return { client, token: String(reply.token), cursor: String(reply.cursor) };
}

async function httpLogin(user: string, password: string): Promise<string> {
  const res = await fetch(`${replicas[1].http}/login`, { method: 'POST', body: new URLSearchParams({ username: user, password }) });
  const body = (await res.json()) as { token: string; cursor: string };
  expect(res.status).toBe(200);
  return body.token;
}

type PollAnswer = { status: number; body: { events: { type: string; reason?: string; text: string }[]; cursor: string } };

/** A long-poll parked on the second replica, after everything so far (wrapped: awaiting it must not wait for the answer). */
async function parkedPoll(token: string): Promise<{ answer: Promise<PollAnswer> }> {
  const first = (await (await fetch(`${replicas[1].http}/events?wait=0`, { headers: { authorization: `Bearer ${token}` } })).json()) as { cursor: string };
  const answer = fetch(`${replicas[1].http}/events?wait=30&after=${first.cursor}`, { headers: { authorization: `Bearer ${token}` } }).then(async (res) => ({
    status: res.status,
    body: (await res.json()) as PollAnswer['body'],
  }));
  return { answer };
}

async function refusedEverywhere(tcpToken: string, loginCursor: string, httpToken: string, reason: string): Promise<void> {
  // Resuming on the other replica from before the end replays the session's
  // last event, then the connection closes; from where the connection got
  // to (its stored cursor, past the end) it is refused, and a removed
  // user's session is not resumed at all.
  const again = await TcpClient.open(replicas[1].tcpPort);
  clients.push(again);
  const replay = await again.command(`resume ${tcpToken} ${loginCursor}`);
  if (reason === 'removed') expect(replay).toMatchObject({ ok: false, error: 'not_logged_in' });
  else {
    expect(replay).toMatchObject({ ok: true });
    expect(await again.waitFor((m) => m.type === 'session_end')).toMatchObject({ reason });
    await expect.poll(() => again.closed, { timeout: 5000 }).toBe(true);
  }
  const other = await TcpClient.open(replicas[1].tcpPort);
  clients.push(other);
  expect(await other.command(`resume ${tcpToken}`)).toMatchObject({ ok: false, error: 'not_logged_in' });
  const res = await fetch(`${replicas[0].http}/command`, { method: 'POST', headers: { authorization: `Bearer ${httpToken}` }, body: 'whoelse' });
  expect(res.status).toBe(401);
  expect(await res.json()).toMatchObject({ ok: false, error: 'not_logged_in' });
  const tcpOverHttp = await fetch(`${replicas[1].http}/command`, { method: 'POST', headers: { authorization: `Bearer ${tcpToken}` }, body: 'whoelse' });
  expect(tcpOverHttp.status).toBe(401);
}

const cases = [
  {
    action: 'logout',
    args: (user: string) => ['logout', user],
    users: [['vader', 'sithlord'], ['obiwan', 'kenobi']],
    reason: 'operator',
    text: 'You have been logged out by the administrator',
    loginAfter: 'ok',
  },
  {
    action: 'reset',
    args: (user: string) => ['reset', user, 'newpass1'],
    users: [['r2d2', 'beepboop'], ['c3po', 'protocol']],
    reason: 'password_changed',
    text: 'Your password has been changed. Please log in again',
    loginAfter: 'new password',
  },
  {
    action: 'remove',
    args: (user: string) => ['remove', user],
    users: [['chewy', 'wookie'], ['lando', 'cloudcity']],
    reason: 'removed',
    text: 'Your account has been removed. You have been logged out',
    loginAfter: 'invalid user',
  },
] as const;

describe('operator control across two replicas on a real Redis', () => {
  for (const c of cases) {
    it(`users ${c.action} ends a TCP session and a long-poll on another replica within a second, says why, and the token is refused`, async () => {
      const [[tcpUser, tcpPassword], [httpUser, httpPassword]] = c.users;
      const tcp = await tcpLogin(tcpUser, tcpPassword);
      const httpToken = await httpLogin(httpUser, httpPassword);
      const watcher = await tcpLogin('leia', 'alderaan').catch(() => null);
      const poll = await parkedPoll(httpToken);

      const [tcpRun, httpRun] = await Promise.all([usersTool(...c.args(tcpUser)), usersTool(...c.args(httpUser))]);
      const done = Date.now();
      expect(tcpRun.code, tcpRun.out).toBe(0);
      expect(httpRun.code, httpRun.out).toBe(0);

      const ended = await tcp.client.waitFor((m) => m.type === 'session_end', 1000);
      expect(ended).toMatchObject({ reason: c.reason, text: c.text });
      // Other events (someone else logging out) may come first: poll on from each cursor.
      let answered = await poll.answer;
      const seen = [...answered.body.events];
      while (answered.status === 200 && !seen.some((e) => e.type === 'session_end') && Date.now() - done < 1000) {
        const res = await fetch(`${replicas[1].http}/events?wait=1&after=${answered.body.cursor}`, { headers: { authorization: `Bearer ${httpToken}` } });
        answered = { status: res.status, body: (await res.json()) as PollAnswer['body'] };
        if (res.status === 200) seen.push(...answered.body.events);
      }
      expect(answered.status).toBe(200);
      expect(seen.at(-1)).toMatchObject({ type: 'session_end', reason: c.reason, text: c.text });
      expect(Date.now() - done).toBeLessThan(1000);
      // The connection closes after its session's last event.
      await expect.poll(() => tcp.client.closed, { timeout: 5000 }).toBe(true);
      // Others see them log out.
      if (watcher) {
        await watcher.client.waitFor((m) => m.type === 'presence' && m.text === `${tcpUser} logged out`);
        watcher.client.command('logout').catch(() => undefined);
      }

      await refusedEverywhere(tcp.token, tcp.cursor, httpToken, c.reason);
      const again = await fetch(`${replicas[0].http}/command`, { method: 'POST', headers: { authorization: `Bearer ${tcp.token}` }, body: 'whoelse' });
      expect(await again.json()).toMatchObject({ ok: false, error: 'not_logged_in', text: 'Error. Your session has ended. Please log in again' });

      const login = await fetch(`${replicas[1].http}/login`, { method: 'POST', body: new URLSearchParams({ username: tcpUser, password: c.loginAfter === 'new password' ? 'newpass1' : tcpPassword }) });
      const body = (await login.json()) as { ok: boolean; error?: string; token?: string };
      if (c.loginAfter === 'invalid user') expect(body).toMatchObject({ ok: false, error: 'invalid_user' });
      else {
        expect(body).toMatchObject({ ok: true });
        await fetch(`${replicas[1].http}/logout`, { method: 'POST', headers: { authorization: `Bearer ${body.token}` } });
      }
    }, 60_000);
  }

  it('users logout of a user with no live session says so and exits 1', async () => {
    const run = await usersTool('logout', 'hans');
    expect(run).toMatchObject({ code: 1 });
    expect(run.out).toContain('hans has no live session');
  });
});
