import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parsePrometheus, sampleValue } from '../support/prometheus.js';
import { startTestReplica } from '../support/replica.js';
import { TcpClient } from '../support/tcp-client.js';

let t: Awaited<ReturnType<typeof startTestReplica>>;
const clients: TcpClient[] = [];

/** Long-polls parked on the replica now, as its metrics listener reports them. */
async function parkedPolls(): Promise<number> {
  return sampleValue(parsePrometheus(await (await fetch(`${t.http.metrics}/metrics`)).text()), 'im_parked_polls');
}

async function tcpLogin(user: string, password: string) {
  const client = await TcpClient.open(t.replica.tcpPort);
  clients.push(client);
  const reply = await client.command(`login ${user} ${password}`);
  expect(reply).toMatchObject({ cmd: 'login', ok: true, text: 'Welcome to the greatest messaging application ever!' });
  return { client, token: String(reply.token) };
}

beforeEach(async () => {
  t = await startTestReplica();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await t.replica.close();
});

describe('two TCP users and one HTTP user', () => {
  it('message each other across transports, with presence', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    t.clock.advance(1);
    const luke = await tcpLogin('luke', 'sunrise');
    await yoda.client.waitFor((m) => m.type === 'presence' && m.text === 'luke logged in');

    t.clock.advance(1); // whoelse lists users in login order
    const hans = await t.http.login('hans', 'falcon');
    expect(hans.status).toBe(200);
    const hansToken = String(hans.body.token);
    await yoda.client.waitFor((m) => m.text === 'hans logged in');
    await luke.client.waitFor((m) => m.text === 'hans logged in');

    expect(await yoda.client.command('message luke Hey Dude')).toMatchObject({ ok: true, text: '' });
    expect(await luke.client.waitFor((m) => m.type === 'message')).toMatchObject({ from: 'yoda', text: 'yoda: Hey Dude', offline: false });

    expect((await t.http.command(hansToken, 'message yoda hello from curl')).body).toMatchObject({ ok: true });
    expect(await yoda.client.waitFor((m) => m.type === 'message')).toMatchObject({ text: 'hans: hello from curl' });

    expect(await luke.client.command('broadcast hi all')).toMatchObject({ ok: true, text: '' });
    const events = (await t.http.events(hansToken, 'wait=5')).body.events;
    expect(events.map((e) => e.text)).toContain('luke: hi all');

    const who = await yoda.client.command('whoelse');
    expect(who).toMatchObject({ cmd: 'whoelse', ok: true, users: ['luke', 'hans'], text: 'luke\nhans' });
    const whoHttp = await t.http.command(hansToken, 'whoelse');
    expect(whoHttp.body).toMatchObject({ users: ['yoda', 'luke'] });

    expect(await luke.client.command('logout')).toMatchObject({ cmd: 'logout', ok: true });
    expect(await luke.client.waitFor((m) => m.type === 'session_end')).toMatchObject({ reason: 'logout' });
    await luke.client.waitClosed();
    await yoda.client.waitFor((m) => m.text === 'luke logged out');
  });

  it('stores a message for an offline user and delivers it after the login reply', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    await yoda.client.command('message leia see you later');
    await yoda.client.command('message leia second one');
    const leia = await TcpClient.open(t.replica.tcpPort);
    clients.push(leia);
    const reply = await leia.command('login leia alderaan');
    expect(reply).toMatchObject({ ok: true, cursor: expect.any(String) });
    await leia.waitFor((m) => m.text === 'yoda: second one');
    const messages = leia.received.filter((m) => m.type === 'message');
    expect(messages.map((m) => [m.text, m.offline])).toEqual([
      ['yoda: see you later', true],
      ['yoda: second one', true],
    ]);
    // Each event's id is a cursor of its own, none the login's.
    expect(new Set([reply.cursor, ...messages.map((m) => m.id)]).size).toBe(3);
    // The login reply comes before the stored messages.
    expect(leia.received.indexOf(reply)).toBeLessThan(leia.received.indexOf(messages[0]));
  });
});

describe('long-poll', () => {
  it('is woken by a new event instead of waiting out its time', async () => {
    const luke = String((await t.http.login('luke', 'sunrise')).body.token);
    const yoda = await tcpLogin('yoda', 'wise');
    const first = await t.http.events(luke, 'wait=0');
    const started = Date.now();
    const parked = t.http.events(luke, `after=${first.body.cursor}&wait=30`);
    await vi.waitFor(async () => expect(await parkedPolls()).toBe(1), { timeout: 10_000, interval: 20 });
    await yoda.client.command('message luke wake up');
    const answer = await parked;
    expect(answer.body.events.map((e) => e.text)).toEqual(['yoda: wake up']);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await parkedPolls()).toBe(0);
  });

  it('answers an empty poll when the wait passes, with a cursor to go on from', async () => {
    const login = (await t.http.login('luke', 'sunrise')).body;
    const answer = await t.http.events(String(login.token), `after=${login.cursor}&wait=1`);
    expect(answer.status).toBe(200);
    // Past luke's own presence event, which is not his to see.
    expect(answer.body).toEqual({ events: [], cursor: expect.any(String) });
    const again = await t.http.events(String(login.token), `after=${answer.body.cursor}&wait=0`);
    expect(again.body).toEqual({ events: [], cursor: answer.body.cursor });
  });

  it('loses and repeats nothing when every poll passes the last cursor', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const login = (await t.http.login('luke', 'sunrise')).body;
    const luke = String(login.token);
    // 30 messages: within the default command burst of 40.
    const sending = (async () => {
      for (let k = 1; k <= 30; k++) {
        const reply = await yoda.client.command(`message luke n${k}`);
        expect(reply.ok).toBe(true);
      }
    })();
    const seen: string[] = [];
    let cursor = String(login.cursor);
    while (seen.length < 30) {
      const { body } = await t.http.events(luke, `after=${cursor}&wait=5`);
      for (const e of body.events) seen.push(String(e.text));
      cursor = body.cursor;
    }
    await sending;
    expect(seen).toEqual(Array.from({ length: 30 }, (_v, k) => `yoda: n${k + 1}`));
    // Polling again with the acknowledged cursor repeats nothing.
    expect((await t.http.events(luke, `after=${cursor}&wait=0`)).body.events).toEqual([]);
  });

  it('without after, uses and advances the session stored cursor', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const luke = String((await t.http.login('luke', 'sunrise')).body.token);
    await yoda.client.command('message luke one');
    expect((await t.http.events(luke)).body.events.map((e) => e.text)).toEqual(['yoda: one']);
    expect((await t.http.events(luke)).body.events).toEqual([]);
    await yoda.client.command('message luke two');
    expect((await t.http.events(luke)).body.events.map((e) => e.text)).toEqual(['yoda: two']);
  });

  it('without after, returns session_end once after logout, then 401', async () => {
    const luke = String((await t.http.login('luke', 'sunrise')).body.token);
    await t.http.events(luke);
    expect((await t.http.command(luke, 'logout')).status).toBe(200);
    expect((await t.http.events(luke)).body.events).toMatchObject([{ type: 'session_end', reason: 'logout' }]);
    expect((await t.http.events(luke)).status).toBe(401);
  });

  it('returns session_end once after logout, then 401', async () => {
    const luke = String((await t.http.login('luke', 'sunrise')).body.token);
    const first = await t.http.events(luke);
    expect((await t.http.command(luke, 'logout')).status).toBe(200);
    const last = await t.http.events(luke, `after=${first.body.cursor}`);
    expect(last.body.events).toMatchObject([{ type: 'session_end', reason: 'logout' }]);
    const after = await t.http.events(luke, `after=${last.body.cursor}`);
    expect(after.status).toBe(401);
    expect((await t.http.command(luke, 'whoelse')).status).toBe(401);
  });
});

describe('resume', () => {
  it('re-attaches a dropped TCP session and replays what was missed, once', async () => {
    const luke = await tcpLogin('luke', 'sunrise');
    const yoda = await tcpLogin('yoda', 'wise');
    await yoda.client.command('message luke before the drop');
    const before = await luke.client.waitFor((m) => m.text === 'yoda: before the drop');
    luke.client.close();
    await yoda.client.command('message luke while away 1');
    await yoda.client.command('message luke while away 2');

    const again = await TcpClient.open(t.replica.tcpPort);
    clients.push(again);
    const reply = await again.command(`resume ${luke.token} ${before.id}`);
    expect(reply).toMatchObject({ cmd: 'resume', ok: true, cursor: String(before.id) });
    await again.waitFor((m) => m.text === 'yoda: while away 2');
    await yoda.client.command('message luke after the resume');
    await again.waitFor((m) => m.text === 'yoda: after the resume');
    expect(again.received.filter((m) => m.type === 'message').map((m) => m.text)).toEqual([
      'yoda: while away 1',
      'yoda: while away 2',
      'yoda: after the resume',
    ]);
    // No login notification for a resume (yoda logged in after luke, so saw none at all).
    expect(yoda.client.received.filter((m) => m.text === 'luke logged in')).toHaveLength(0);
    expect(yoda.client.received.filter((m) => m.text === 'luke logged out')).toHaveLength(0);
  });

  it('refuses an unknown token', async () => {
    const client = await TcpClient.open(t.replica.tcpPort);
    clients.push(client);
    expect(await client.command('resume luke:not-a-token')).toMatchObject({ ok: false, error: 'not_logged_in' });
  });
});

describe('inactivity timeout', () => {
  it('logs out an idle session, tells its client, and announces it to others once', async () => {
    const luke = await tcpLogin('luke', 'sunrise');
    const yoda = await tcpLogin('yoda', 'wise');
    const hansLogin = (await t.http.login('hans', 'falcon')).body;
    const hans = String(hansLogin.token);
    t.clock.advance(100);
    await yoda.client.command('whoelse');
    await t.http.command(hans, 'whoelse');
    t.clock.advance(30); // luke idle 130 s > 120 s; the others 30 s.
    expect(await luke.client.waitFor((m) => m.type === 'session_end')).toMatchObject({
      reason: 'timeout',
      text: 'You have been logged out due to inactivity',
    });
    await luke.client.waitClosed();
    await yoda.client.waitFor((m) => m.text === 'luke logged out');
    // Several more sweeps run (each starts by asking for idle candidates)...
    const sweeps = vi.spyOn(t.state, 'idleCandidates');
    await vi.waitFor(() => expect(sweeps.mock.calls.length).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 20 });
    sweeps.mockRestore();
    // ...and a lobby event after them reaches yoda after any repeat of the announcement would have.
    expect((await t.http.command(hans, 'broadcast after the sweeps')).status).toBe(200);
    await yoda.client.waitFor((m) => m.text === 'hans: after the sweeps');
    expect(yoda.client.received.filter((m) => m.text === 'luke logged out')).toHaveLength(1);
    expect(yoda.client.received.find((m) => m.text === 'luke logged out')).toMatchObject({ reason: 'timeout' });
    const polled = (await t.http.events(hans, `after=${hansLogin.cursor}`)).body.events.filter((e) => e.text === 'luke logged out');
    expect(polled).toHaveLength(1);
  });

  it('does not count keepalives or invalid commands as activity', async () => {
    const luke = await tcpLogin('luke', 'sunrise');
    t.clock.advance(100);
    expect(await luke.client.command('ping')).toEqual({ type: 'pong' });
    expect(await luke.client.command('nonsense')).toMatchObject({ error: 'invalid_command' });
    t.clock.advance(30);
    await luke.client.waitFor((m) => m.type === 'session_end');
  });
});

describe('login lockout over TCP', () => {
  it('closes the connection after three failed logins and blocks the account', async () => {
    const client = await TcpClient.open(t.replica.tcpPort);
    clients.push(client);
    expect(await client.command('login yoda wrong')).toMatchObject({ error: 'invalid_password', text: 'Invalid Password. Please try again' });
    expect(await client.command('login yoda wrong')).toMatchObject({ error: 'invalid_password' });
    expect(await client.command('login yoda wrong')).toMatchObject({
      error: 'invalid_password',
      text: 'Invalid Password. Your account has been blocked. Please try again later',
    });
    await client.waitClosed();
    const again = await TcpClient.open(t.replica.tcpPort);
    clients.push(again);
    expect(await again.command('login yoda wise')).toMatchObject({
      error: 'account_blocked',
      text: 'Your account is blocked due to multiple login failures. Please try again later',
    });
    await again.waitClosed();
    const http = await t.http.login('yoda', 'wise');
    expect(http.status).toBe(403);
    t.clock.advance(61);
    expect((await t.http.login('yoda', 'wise')).status).toBe(200);
  });
});
