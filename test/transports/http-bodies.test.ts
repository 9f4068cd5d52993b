import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { startTestReplica } from '../support/replica.js';
import { webRequests } from '../../transports/http.js';

/*
 * Both body forms of SPEC section 4 as curl sends them typed by hand:
 * `curl -d '...'` declares every body a form
 * (application/x-www-form-urlencoded), JSON or not.
 */

type Replica = Awaited<ReturnType<typeof startTestReplica>>;
let t: Replica;

beforeAll(async () => {
  t = await startTestReplica();
});

afterAll(async () => {
  await t.replica.close();
});

const form = 'application/x-www-form-urlencoded';

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.http.base}${path}`, { method: 'POST', headers: { 'content-type': form, ...headers }, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('POST /command body forms, as curl -d sends them', () => {
  it('{"line": ...} is read as JSON without a JSON content type; the command line as it is', async () => {
    const login = await post('/login', '{"username":"yoda","password":"wise"}');
    expect(login).toMatchObject({ status: 200, body: { ok: true } });
    const auth = { authorization: `Bearer ${String(login.body.token)}` };
    expect(await post('/command', '{"line":"whoelse"}', auth)).toMatchObject({ status: 200, body: { cmd: 'whoelse', ok: true } });
    expect(await post('/command', ' {"line":"block luke"}\n', auth)).toMatchObject({ status: 200, body: { cmd: 'block', text: 'luke is blocked' } });
    expect(await post('/command', 'unblock luke', auth)).toMatchObject({ status: 200, body: { cmd: 'unblock', text: 'luke is unblocked' } });
    // A body that starts like JSON but is not: a usage error naming both forms, never a command line.
    expect(await post('/command', '{"line":"message', auth)).toMatchObject({ status: 400, body: { error: 'usage' } });
    expect(await post('/command', '{"text":"whoelse"}', auth)).toMatchObject({ status: 400, body: { error: 'usage' } });
  });

  it('login takes form fields and a JSON object whatever the declared type', async () => {
    const a = await post('/login', 'username=luke&password=sunrise');
    expect(a).toMatchObject({ status: 200, body: { ok: true } });
    const b = await post('/login', '{"username":"hans","password":"falcon"}', { 'content-type': 'text/plain' });
    expect(b).toMatchObject({ status: 200, body: { ok: true } });
  });
});

describe('a body read off a web Request (the Worker host)', () => {
  // The Worker reads bodies with webRequests; the Node replica above reads the IncomingMessage.
  const app = new Hono().post('/', async (c) => {
    const bytes = await webRequests.body(c, 512);
    return c.json(bytes === 'too_long' ? { tooLong: true } : { text: new TextDecoder().decode(bytes) });
  });
  const streamed = (parts: string[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
        controller.close();
      },
    });
  const read = async (body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
    (await app.request('/', { method: 'POST', body, headers, duplex: 'half' } as RequestInit)).json();

  it('joins the chunks of a body within the limit', async () => {
    expect(await read(streamed(['who', 'else']))).toEqual({ text: 'whoelse' });
    expect(await read('')).toEqual({ text: '' });
  });

  it('stops at the limit whether or not the length was declared', async () => {
    expect(await read(streamed(Array.from({ length: 5 }, () => 'x'.repeat(400))))).toEqual({ tooLong: true });
    expect(await read('x'.repeat(513))).toEqual({ tooLong: true });
    expect(await read('x'.repeat(512))).toEqual({ text: 'x'.repeat(512) });
    expect(await read('x', { 'content-length': '100000' })).toEqual({ tooLong: true });
  });
});
