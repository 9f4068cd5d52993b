import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openState } from '../../state/connect.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startTestReplica } from '../support/replica.js';
import { TcpClient } from '../support/tcp-client.js';
import { fillSocket, numberOf, sendNumbered } from '../support/flood.js';

/**
 * A gap on a live stream (SPEC section 4: a gap is reported, never skipped
 * in silence): a reader that falls behind what the store keeps gets a `gap`
 * event where the loss happened, before the next event it reads, and a
 * resume from the last event it read is told again.
 */

const gapText = 'Some earlier events were missed: the server no longer keeps them';
const backlog = 100;
const WAIT = { timeout: 30_000, interval: 20 };

type Replica = Awaited<ReturnType<typeof startTestReplica>>;
let t: Replica;
let redis: RedisServer;
const clients: TcpClient[] = [];

// A real redis-server: filling a socket's kernel buffers takes thousands of
// messages, which the embedded store's Lua runs too slowly for a quick test.
beforeAll(async () => {
  redis = await startRedis();
  const store = openState(redis.url).state;
  t = await startTestReplica({ commandRate: 0, loginRate: 0, backlog }, {}, { store, realClock: true });
});

afterEach(async () => {
  for (const c of clients.splice(0)) {
    c.socket.resume();
    if (!c.closed) await c.command('logout').catch(() => undefined);
    c.close();
  }
});

afterAll(async () => {
  await t?.replica.close();
  await t?.ctx.state.close();
  await redis?.stop();
});

async function tcpLogin(user: string, password: string) {
  const client = await TcpClient.open(t.replica.tcpPort);
  clients.push(client);
  const reply = await client.command(`login ${user} ${password}`);
  expect(reply, JSON.stringify(reply)).toMatchObject({ ok: true });
  return { client, token: String(reply.token) };
}

/**
 * Fills the reader's socket (the replica holds output for it), then sends
 * `backlog` times three more, so events the reader never got are trimmed
 * away. Returns how many were sent.
 */
async function overflow(from: TcpClient, to: string): Promise<number> {
  const sent = await fillSocket(t.replica, from, to);
  await sendNumbered(from, to, sent, backlog * 3);
  return sent + backlog * 3;
}

const number = numberOf;

/** The events a client read that matter here: numbered messages and gaps, in order. */
const stream = (c: TcpClient) => c.received.filter((m) => m.type === 'message' || m.type === 'gap');

describe('a live TCP reader that falls behind the backlog', () => {
  it('gets a gap event before the next event it reads, where the numbers jump, and only once', async () => {
    const reader = await tcpLogin('hans', 'falcon');
    const yoda = await tcpLogin('yoda', 'wise');
    reader.client.socket.pause();
    const sent = await overflow(yoda.client, 'hans');
    reader.client.socket.resume();
    await reader.client.waitFor((m) => m.type === 'message' && number(m) === sent - 1, 30_000);

    const events = stream(reader.client);
    const gaps = events.flatMap((m, k) => (m.type === 'gap' ? [k] : []));
    expect(gaps).toHaveLength(1);
    const [at] = gaps;
    expect(events[at]).toMatchObject({ type: 'gap', text: gapText });
    expect(typeof events[at].id).toBe('string');
    // Up to the gap, and after it, nothing is missing; across it, the trimmed part is.
    const before = events.slice(0, at).map(number);
    const after = events.slice(at + 1).map(number);
    expect(before).toEqual(Array.from({ length: before.length }, (_v, k) => k));
    expect(after.at(-1)).toBe(sent - 1);
    expect(after).toEqual(Array.from({ length: after.length }, (_v, k) => after[0] + k));
    expect(after[0]).toBeGreaterThan(before.length);
    expect(after.length).toBeLessThanOrEqual(backlog);
  }, 90_000);

  it('is told again when it resumes after a disconnect from the last event it read', async () => {
    const reader = await tcpLogin('leia', 'alderaan');
    const yoda = await tcpLogin('yoda', 'wise');
    expect(await yoda.client.command('message leia first')).toMatchObject({ ok: true });
    const first = await reader.client.waitFor((m) => m.type === 'message' && m.body === 'first');
    reader.client.socket.pause();
    const sent = await overflow(yoda.client, 'leia');
    // The connection drops before the reader read the gap: the cursor the
    // replica saves when it goes is past it, the reader's own is not.
    reader.client.socket.destroy();
    await vi.waitFor(() => expect(t.replica.tcpStats().outputBytes).toBe(0), WAIT);

    const again = await TcpClient.open(t.replica.tcpPort);
    clients.push(again);
    expect(await again.command(`resume ${reader.token} ${String(first.id)}`)).toMatchObject({ ok: true, gap: true });
    await again.waitFor((m) => m.type === 'message' && number(m) === sent - 1, 30_000);
    const events = stream(again);
    expect(events[0]).toMatchObject({ type: 'gap', text: gapText });
    expect(events.filter((m) => m.type === 'gap')).toHaveLength(1);
    expect(events.slice(1).map(number)).toEqual(Array.from({ length: backlog }, (_v, k) => sent - backlog + k));
  }, 90_000);
});
