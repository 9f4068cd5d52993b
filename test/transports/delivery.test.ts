import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openState } from '../../state/connect.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startTestReplica } from '../support/replica.js';
import { socketBufferBytes } from '../../transports/tcp/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { fillSocket as fillSocketOf, floodBody, sendNumbered as sendNumberedTo } from '../support/flood.js';

/**
 * The delivery model (ARCHITECTURE.md): a session reads two streams, its
 * inbox and the lobby, through one opaque cursor; nothing is lost or
 * repeated across both; a stream trimmed past a cursor is a gap; and a
 * client that does not read costs the server about a socket buffer.
 */

type Replica = Awaited<ReturnType<typeof startTestReplica>>;
let t: Replica;
let redis: RedisServer;
const clients: TcpClient[] = [];

// A real redis-server: filling a socket's kernel buffers takes thousands of
// messages, which the embedded store's Lua runs too slowly for a quick test.
beforeAll(async () => {
  redis = await startRedis();
  const store = openState(redis.url).state;
  t = await startTestReplica({ commandRate: 0, loginRate: 0, lobbyBacklog: 50, backlog: 100_000 }, {}, { store, realClock: true });
});

const httpTokens: string[] = [];

// A test that fails half-way leaves no session behind for the next one.
afterEach(async () => {
  for (const c of clients.splice(0)) {
    c.socket.resume();
    if (!c.closed) await c.command('logout').catch(() => undefined);
    c.close();
  }
  for (const token of httpTokens.splice(0)) await t.http.command(token, 'logout').catch(() => undefined);
});

async function httpLogin(user: string, password: string) {
  const login = (await t.http.login(user, password)).body;
  expect(login, JSON.stringify(login)).toMatchObject({ ok: true });
  httpTokens.push(String(login.token));
  return login;
}

afterAll(async () => {
  for (const c of clients) c.close();
  await t?.replica.close();
  await t?.ctx.state.close();
  await redis?.stop();
});

async function tcpLogin(user: string, password: string) {
  const client = await TcpClient.open(t.replica.tcpPort);
  clients.push(client);
  const reply = await client.command(`login ${user} ${password}`);
  expect(reply, JSON.stringify(reply)).toMatchObject({ ok: true });
  return { client, token: String(reply.token), cursor: String(reply.cursor) };
}

const WAIT = { timeout: 15_000, interval: 20 };

describe('one cursor over the inbox and the lobby', () => {
  // Each stream keeps its order; across the two, events are merged by their
  // millisecond time from the snapshots a poll read, which a sender faster
  // than a poll's two reads can interleave either way (docs/DESIGN.md,
  // Known edges). What a client is promised is every event once, each
  // stream in order.
  it('a long-poll loop gets direct messages and broadcasts, each once, each stream in its order', async () => {
    const yoda = await tcpLogin('yoda', 'wise');
    const login = await httpLogin('luke', 'sunrise');
    const token = String(login.token);
    const sending = (async () => {
      for (let k = 1; k <= 20; k++) {
        expect(await yoda.client.command(k % 2 ? `message luke d${k}` : `broadcast b${k}`)).toMatchObject({ ok: true });
      }
    })();
    const seen: string[] = [];
    const ids = new Set<string>();
    let cursor = String(login.cursor);
    const deadline = Date.now() + 15_000;
    while (seen.length < 20 && Date.now() < deadline) {
      const { body } = await t.http.events(token, `after=${cursor}&wait=5`);
      for (const e of body.events) {
        if (e.type === 'presence') continue;
        seen.push(String(e.text));
        ids.add(String(e.id));
      }
      cursor = body.cursor;
    }
    await sending;
    const expected = Array.from({ length: 20 }, (_v, k) => `yoda: ${k % 2 ? 'b' : 'd'}${k + 1}`);
    expect([...seen].sort()).toEqual([...expected].sort());
    expect(seen.filter((text) => text.startsWith('yoda: d'))).toEqual(expected.filter((text) => text.startsWith('yoda: d')));
    expect(seen.filter((text) => text.startsWith('yoda: b'))).toEqual(expected.filter((text) => text.startsWith('yoda: b')));
    expect(ids.size).toBe(20);
    expect((await t.http.events(token, `after=${cursor}&wait=0`)).body.events).toEqual([]);
    await t.http.command(token, 'logout');
    await yoda.client.command('logout');
  });

  it('a TCP resume from any event id replays what followed in both streams, once', async () => {
    const luke = await tcpLogin('luke', 'sunrise');
    const yoda = await tcpLogin('yoda', 'wise');
    await yoda.client.command('message luke before');
    const before = await luke.client.waitFor((m) => m.text === 'yoda: before');
    luke.client.close();
    await yoda.client.command('broadcast away 1');
    await yoda.client.command('message luke away 2');
    await yoda.client.command('broadcast away 3');
    const again = await TcpClient.open(t.replica.tcpPort);
    clients.push(again);
    expect(await again.command(`resume ${luke.token} ${String(before.id)}`)).toMatchObject({ ok: true });
    await again.waitFor((m) => m.text === 'yoda: away 3');
    await yoda.client.command('broadcast after');
    await again.waitFor((m) => m.text === 'yoda: after');
    const texts = again.received.filter((m) => m.type === 'message' || m.type === 'broadcast').map((m) => m.text);
    expect(texts).toEqual(['yoda: away 1', 'yoda: away 2', 'yoda: away 3', 'yoda: after']);
    await again.command('logout');
    await yoda.client.command('logout');
  });

  it('a lobby event skips the users it names: the blockers of a broadcast sender never get it', async () => {
    const luke = await tcpLogin('luke', 'sunrise');
    const yoda = await tcpLogin('yoda', 'wise');
    expect(await luke.client.command('block yoda')).toMatchObject({ ok: true });
    expect(await yoda.client.command('broadcast not for luke')).toMatchObject({
      text: 'Your message could not be delivered to some recipients',
    });
    expect(await luke.client.command('unblock yoda')).toMatchObject({ ok: true });
    expect(await yoda.client.command('broadcast for luke')).toMatchObject({ text: '' });
    await luke.client.waitFor((m) => m.text === 'yoda: for luke');
    expect(luke.client.received.filter((m) => m.text === 'yoda: not for luke')).toEqual([]);
    await luke.client.command('logout');
    await yoda.client.command('logout');
  });
});

describe('gaps', () => {
  it('a cursor behind the trimmed lobby gets gap: true and the events still kept', async () => {
    const login = await httpLogin('luke', 'sunrise');
    const yoda = await tcpLogin('yoda', 'wise');
    // lobbyBacklog is 50 in this file: 60 broadcasts trim the first ones.
    for (let k = 1; k <= 60; k++) await yoda.client.command(`broadcast g${k}`);
    const { body } = await t.http.events(String(login.token), `after=${login.cursor}&wait=0`);
    expect(body).toMatchObject({ gap: true });
    expect(body.events[0]).toMatchObject({ type: 'gap', text: 'Some earlier events were missed: the server no longer keeps them' });
    const texts = body.events.filter((e) => e.type === 'broadcast').map((e) => e.text);
    expect(texts.at(-1)).toBe('yoda: g60');
    expect(texts).not.toContain('yoda: g1');
    // The TCP side says so in the resume reply, and with a gap event before the first broadcast kept.
    const again = await TcpClient.open(t.replica.tcpPort);
    clients.push(again);
    expect(await again.command(`resume ${String(login.token)} ${String(login.cursor)}`)).toMatchObject({ ok: true, gap: true });
    await again.waitFor((m) => m.text === 'yoda: g60');
    const read = again.received.filter((m) => m.type === 'gap' || m.type === 'broadcast');
    expect(read[0]).toMatchObject({ type: 'gap' });
    expect(read.filter((m) => m.type === 'gap')).toHaveLength(1);
    await again.command('logout');
    await yoda.client.command('logout');
  });
});

describe('bounded memory', () => {
  const sendNumbered = (from: TcpClient, to: string, first: number, count: number) => sendNumberedTo(from, to, first, count);
  const fillSocket = (from: TcpClient, to: string) => fillSocketOf(t.replica, from, to);
  const body = floodBody;

  it('a TCP client that never reads holds about a socket buffer on the server, and later gets everything once, in order', async () => {
    const reader = await tcpLogin('hans', 'falcon');
    const yoda = await tcpLogin('yoda', 'wise');
    reader.client.socket.pause();
    const filled = await fillSocket(yoda.client, 'hans');
    // Its socket is full: everything sent from now on waits in the store.
    const more = 2000; // about 2 MB more
    await sendNumbered(yoda.client, 'hans', filled, more);
    const count = filled + more;
    expect(t.replica.tcpStats().outputBytes).toBeLessThan(4 * socketBufferBytes);
    reader.client.socket.resume();
    await reader.client.waitFor((m) => m.text === `yoda: ${count - 1} ${body}`, 30_000);
    const numbers = reader.client.received.filter((m) => m.type === 'message').map((m) => Number(String(m.body).split(' ')[0]));
    expect(numbers).toEqual(Array.from({ length: count }, (_v, k) => k));
    await reader.client.command('logout');
    await yoda.client.command('logout');
  }, 60_000);

  it('a client that pipelines commands without reading replies is paused, not buffered', async () => {
    const flooder = await tcpLogin('leia', 'alderaan');
    const yoda = await tcpLogin('yoda', 'wise');
    flooder.client.socket.pause();
    await fillSocket(yoda.client, 'leia');
    // With its socket full, the command loop waits: lines queue up to the
    // limit, then the server stops reading the connection.
    const lines = 2000;
    for (let k = 0; k < lines; k++) flooder.client.socket.write(`message nobody ${body}\n`);
    await vi.waitFor(() => expect(t.replica.tcpStats().paused).toBeGreaterThanOrEqual(1), WAIT);
    const stats = t.replica.tcpStats();
    expect(stats.queuedLines).toBeLessThanOrEqual(64 + 64);
    expect(stats.outputBytes).toBeLessThan(64 * 1024);
    // Once it reads, every line gets its reply.
    flooder.client.socket.resume();
    await vi.waitFor(() => {
      expect(flooder.client.received.filter((m) => m.type === 'reply' && m.cmd === 'message')).toHaveLength(lines);
    }, { timeout: 60_000, interval: 50 });
    expect(t.replica.tcpStats().paused).toBe(0);
    await flooder.client.command('logout');
    await yoda.client.command('logout');
  }, 60_000);
});
