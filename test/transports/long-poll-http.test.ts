import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTestReplica } from '../support/replica.js';
import { TcpClient } from '../support/tcp-client.js';

/** HTTP long-poll (SPEC section 4): /logout, the hold of GET /events, statuses of /command, gaps on /events. */
let t: Awaited<ReturnType<typeof startTestReplica>>;
const clients: TcpClient[] = [];

beforeEach(async () => {
  // An inbox keeps 5 events here, so a gap takes a few messages.
  t = await startTestReplica({ backlog: 5 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await t.replica.close();
});

async function tcpLogin(user: string, password: string) {
  const client = await TcpClient.open(t.replica.tcpPort);
  clients.push(client);
  const reply = await client.command(`login ${user} ${password}`);
  expect(reply).toMatchObject({ ok: true });
  return { client, token: String(reply.token), cursor: String(reply.cursor) };
}

async function httpLogin(user: string, password: string) {
  const { status, body } = await t.http.login(user, password);
  expect(status).toBe(200);
  return { token: String(body.token), cursor: String(body.cursor) };
}

/** Long-polls parked on the replica now, from GET /metrics on its metrics listener. */
async function parkedPolls(): Promise<number> {
  const text = await (await fetch(`${t.http.metrics}/metrics`)).text();
  const m = /^im_parked_polls (\S+)$/m.exec(text);
  if (!m) throw new Error('no im_parked_polls in /metrics');
  return Number(m[1]);
}

const WAIT = { timeout: 10_000, interval: 20 };

describe('POST /logout', () => {
  it('ends the session: 200 with the words the CLI prints, others see the user log out, then 401 for that token', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const luke = await httpLogin('luke', 'sunrise');
    await yoda.client.waitFor((m) => m.text === 'luke logged in');
    const res = await fetch(`${t.http.base}/logout`, { method: 'POST', headers: { authorization: `Bearer ${luke.token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ type: 'reply', cmd: 'logout', ok: true, text: 'You have been logged out' });
    expect(await yoda.client.waitFor((m) => m.text === 'luke logged out')).toMatchObject({ type: 'presence', state: 'out', reason: 'logout' });
    const again = await t.http.command(luke.token, 'whoelse');
    expect(again).toMatchObject({ status: 401, body: { error: 'not_logged_in', text: 'Error. Your session has ended. Please log in again' } });
    // luke can log in again at once.
    expect((await t.http.login('luke', 'sunrise')).status).toBe(200);
  });

  it('without a token: 401 not_logged_in, and nobody is logged out', async () => {
    const luke = await httpLogin('luke', 'sunrise');
    const res = await fetch(`${t.http.base}/logout`, { method: 'POST' });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ ok: false, error: 'not_logged_in', text: 'Error. You are not logged in' });
    expect((await t.http.command(luke.token, 'whoelse')).status).toBe(200);
  });
});

describe('GET /events wait', () => {
  it('holds a poll 25 s by default, `wait` seconds when asked, and never more than 60 s', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const luke = await httpLogin('luke', 'sunrise');
    let cursor = (await t.http.events(luke.token, 'wait=0')).body.cursor;
    // The hold is a timer set when the poll parks: read its delay rather
    // than wait out a minute. A poll held longer than 60 s would show as a
    // delay between 60 and 100 s (HTTP client timers are longer).
    const timers = vi.spyOn(globalThis, 'setTimeout');
    try {
      for (const [wait, held] of [['', 25], ['&wait=7', 7], ['&wait=60', 60], ['&wait=100', 60], ['&wait=9999', 60]] as const) {
        timers.mockClear();
        const parked = t.http.events(luke.token, `after=${cursor}${wait}`);
        parked.catch(() => undefined); // awaited below; a failed assertion must not leave it unhandled
        await vi.waitFor(async () => expect(await parkedPolls()).toBe(1), WAIT);
        const delays = timers.mock.calls.map((call) => Number(call[1]));
        expect(delays.filter((ms) => ms > held * 1000 - 2000 && ms <= held * 1000), `wait${wait}: ${delays}`).toHaveLength(1);
        expect(delays.filter((ms) => ms > 60_000 && ms <= 100_000), `wait${wait}: ${delays}`).toEqual([]);
        // Answered by the next event, not by the timer.
        await yoda.client.command(`message luke wake ${held}`);
        const answer = await parked;
        expect(answer.status).toBe(200);
        expect(answer.body.events.map((e) => e.text)).toEqual([`yoda: wake ${held}`]);
        cursor = answer.body.cursor;
      }
    } finally {
      timers.mockRestore();
    }
  });

  it('refuses a wait that is not a number of seconds', async () => {
    const luke = await httpLogin('luke', 'sunrise');
    for (const wait of ['-1', 'soon', '1.5', '99999']) {
      const { status, body } = await t.http.events(luke.token, `wait=${wait}`);
      expect({ wait, status, body }).toMatchObject({ wait, status: 400, body: { error: 'usage' } });
    }
  });
});

describe('POST /command statuses', () => {
  it('429 rate_limited past the command burst (40), and 200 again once the rate (20/s) allows', async () => {
    const luke = await httpLogin('luke', 'sunrise');
    for (let k = 1; k <= 40; k++) expect((await t.http.command(luke.token, 'whoelse')).status, `command ${k}`).toBe(200);
    expect(await t.http.command(luke.token, 'whoelse')).toMatchObject({
      status: 429,
      body: { cmd: 'whoelse', ok: false, error: 'rate_limited', text: 'Error. Too many commands. Please slow down' },
    });
    t.clock.advance(0.05);
    expect((await t.http.command(luke.token, 'whoelse')).status).toBe(200);
  });

  it('503 unavailable with a JSON text when a state store call rejects (a mocked session check), and 200 once it answers again', async () => {
    const luke = await httpLogin('luke', 'sunrise');
    const failing = vi.spyOn(t.state, 'admitCommand').mockRejectedValue(new Error('connection lost'));
    try {
      expect(await t.http.command(luke.token, 'whoelse')).toMatchObject({
        status: 503,
        body: { ok: false, error: 'unavailable', text: 'Error. The service is unavailable. Please try again later' },
      });
    } finally {
      failing.mockRestore();
    }
    expect((await t.http.command(luke.token, 'whoelse')).status).toBe(200);
  });
});

const gapText = 'Some earlier events were missed: the server no longer keeps them';

describe('gap through /events', () => {
  it('a cursor behind the trimmed inbox gets gap: true and the events still kept, once', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const luke = await httpLogin('luke', 'sunrise');
    // The inbox keeps 5 events: 8 messages trim the first 3.
    for (let k = 1; k <= 8; k++) expect(await yoda.client.command(`message luke n${k}`)).toMatchObject({ ok: true });
    const behind = await t.http.events(luke.token, `after=${luke.cursor}&wait=0`);
    expect(behind.status).toBe(200);
    expect(behind.body).toMatchObject({ gap: true });
    // The loss is an event of its own, first, where it happened.
    expect(behind.body.events.map((e) => e.text)).toEqual([gapText, ...['n4', 'n5', 'n6', 'n7', 'n8'].map((n) => `yoda: ${n}`)]);
    expect(behind.body.events[0]).toMatchObject({ type: 'gap' });
    // An answer that was lost is asked for again from the same cursor: told again.
    const lost = await t.http.events(luke.token, `after=${luke.cursor}&wait=0`);
    expect(lost.body.events.map((e) => e.type)).toEqual(['gap', ...Array(5).fill('message')]);
    // Caught up: no gap, nothing repeated.
    const next = await t.http.events(luke.token, `after=${behind.body.cursor}&wait=0`);
    expect(next.body).toEqual({ events: [], cursor: behind.body.cursor });
    // A cursor within what is kept is no gap.
    // From the gap's own id (the client saw it): no gap again.
    const seen = await t.http.events(luke.token, `after=${behind.body.events[0].id}&wait=0`);
    expect(seen.body).not.toHaveProperty('gap');
    expect(seen.body.events.map((e) => e.text)).toEqual(['n4', 'n5', 'n6', 'n7', 'n8'].map((n) => `yoda: ${n}`));
    const kept = await t.http.events(luke.token, `after=${behind.body.events[1].id}&wait=0`);
    expect(kept.body).not.toHaveProperty('gap');
    expect(kept.body.events.map((e) => e.text)).toEqual(['n5', 'n6', 'n7', 'n8'].map((n) => `yoda: ${n}`));
  });
});

describe('what a long-poll may cost', () => {
  it('checks the token before it listens: a wrong token costs no wake-up subscription', async () => {
    const watch = vi.spyOn(t.state, 'watch');
    const res = await fetch(`${t.http.base}/events?wait=5`, { headers: { authorization: 'Bearer yoda:not-a-token' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ ok: false, error: 'not_logged_in' });
    expect(watch).not.toHaveBeenCalled();
  });

  it('a client that goes away unparks its poll at once, long before its wait', async () => {
    const luke = await httpLogin('luke', 'sunrise');
    const first = await t.http.events(luke.token);
    const leave = new AbortController();
    const parked = fetch(`${t.http.base}/events?wait=60&after=${first.body.cursor}`, {
      headers: { authorization: `Bearer ${luke.token}` },
      signal: leave.signal,
    });
    parked.catch(() => undefined);
    await vi.waitFor(async () => expect(await parkedPolls()).toBe(1), WAIT);
    leave.abort();
    await expect(parked).rejects.toThrow();
    await vi.waitFor(async () => expect(await parkedPolls()).toBe(0), WAIT);
    await t.http.command(luke.token, 'logout');
  });

  it('parks at most two polls per session: a third answers the oldest at once, and the two left get the next event', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const { body } = await t.http.login('luke', 'sunrise');
    const token = String(body.token);
    const first = await t.http.events(token);
    const poll = () =>
      fetch(`${t.http.base}/events?wait=30&after=${first.body.cursor}`, { headers: { authorization: `Bearer ${token}` } }).then(
        async (res) => ({ status: res.status, body: (await res.json()) as { events: { text: string }[] } }),
      );
    const oldest = poll();
    await vi.waitFor(() => expect(t.replica.metrics.parkedPolls.get().then((m) => m.values[0]?.value)).resolves.toBe(1), WAIT);
    const second = poll();
    await vi.waitFor(() => expect(t.replica.metrics.parkedPolls.get().then((m) => m.values[0]?.value)).resolves.toBe(2), WAIT);
    const third = poll();
    // The oldest is answered, with nothing yet, as soon as the third parks.
    expect(await oldest).toEqual({ status: 200, body: { events: [], cursor: first.body.cursor } });
    expect(await yoda.client.command('message luke still two')).toMatchObject({ ok: true });
    for (const answer of await Promise.all([second, third])) {
      expect(answer.status).toBe(200);
      expect(answer.body.events.map((e) => e.text)).toEqual(['yoda: still two']);
    }
    await yoda.client.command('logout');
    await t.http.command(token, 'logout');
  });
});
