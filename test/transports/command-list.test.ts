import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../../handlers/registry.js';
import { startTestReplica } from '../support/replica.js';

/*
 * GET /commands (PROTOCOL.md section 9.7): the server's command table, from
 * which a client such as the web page learns the verbs instead of keeping a
 * copy that a new command would leave behind.
 */

type Replica = Awaited<ReturnType<typeof startTestReplica>>;
let t: Replica;

beforeAll(async () => {
  t = await startTestReplica();
});

afterAll(async () => {
  await t.replica.close();
});

describe('GET /commands', () => {
  it("lists exactly the registry's commands, in table order: verb, synopsis, session, typed", async () => {
    const res = await fetch(`${t.http.base}/commands`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const body = (await res.json()) as { commands: { verb: string; synopsis: string; session: boolean }[] };
    expect(body).toEqual({
      commands: commands.map((row) => ({ verb: row.verb, synopsis: row.synopsis, session: row.session, typed: row.typed })),
    });
    // Spelled out for a few rows, so the test does not only compare the table with itself.
    expect(body.commands[0]).toEqual({ verb: 'login', synopsis: 'login <username> <password>', session: false, typed: false });
    expect(body.commands).toContainEqual({ verb: 'whoelsesince', synopsis: 'whoelsesince <seconds>', session: true, typed: true });
    expect(body.commands).toContainEqual({ verb: 'touch', synopsis: 'touch', session: true, typed: false });
    expect(new Set(body.commands.map((c) => c.verb)).size).toBe(commands.length);
  });

  it('lists the verbs the server runs, and only those', async () => {
    const body = (await (await fetch(`${t.http.base}/commands`)).json()) as { commands: { verb: string }[] };
    for (const { verb } of body.commands) {
      // Without a token: a known verb gets a usage or not-logged-in answer, never "invalid command".
      const reply = await t.http.command('no-such-token', verb);
      expect(reply.body.error, verb).not.toBe('invalid_command');
    }
    const unknown = await t.http.command('no-such-token', 'frobnicate');
    expect(unknown.body).toMatchObject({ ok: false, error: 'invalid_command' });
  });

  it('needs no token, and answers the same with one', async () => {
    const login = await t.http.login('yoda', 'wise');
    expect(login.body).toMatchObject({ ok: true });
    const res = await fetch(`${t.http.base}/commands`, { headers: { authorization: `Bearer ${String(login.body.token)}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { commands: unknown[] }).commands).toHaveLength(commands.length);
    await t.http.command(String(login.body.token), 'logout');
  });
});

describe('Cache-Control', () => {
  it('API answers are never cached (a login reply carries a token); static files and /commands say their own', async () => {
    const login = await fetch(`${t.http.base}/login`, { method: 'POST', body: new URLSearchParams({ username: 'yoda', password: 'wise' }) });
    expect(login.headers.get('cache-control')).toBe('no-store');
    const { token } = (await login.json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };
    for (const [path, init] of [
      ['/command', { method: 'POST', headers: auth, body: 'whoelse' }],
      ['/events?wait=0', { headers: auth }],
      ['/command', { method: 'POST', body: 'whoelse' }],
      ['/nowhere', {}],
      ['/healthz', {}],
      ['/readyz', {}],
      ['/command', { method: 'POST', headers: auth, body: 'x'.repeat(70_000) }],
    ] as const) {
      const res = await fetch(`${t.http.base}${path}`, init);
      expect(res.headers.get('cache-control'), path).toBe('no-store');
    }
    expect((await fetch(`${t.http.base}/`)).headers.get('cache-control')).toBe('no-cache');
    await fetch(`${t.http.base}/logout`, { method: 'POST', headers: auth });
  });
});

describe('POST /login from another site', () => {
  const form = (headers: Record<string, string>) =>
    fetch(`${t.http.base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ username: 'leia', password: 'alderaan' }),
    });
  const logoutIfIn = async (res: Response) => {
    const body = (await res.json()) as { ok: boolean; token?: string; error?: string; text?: string };
    if (body.token) await fetch(`${t.http.base}/logout`, { method: 'POST', headers: { authorization: `Bearer ${body.token}` } });
    return body;
  };

  it("refuses a form login a browser sends from another site's page, and never counts it against the account", async () => {
    const foreign: Record<string, string>[] = [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null' }];
    for (const headers of foreign) {
      const res = await form(headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(await logoutIfIn(res)).toEqual({ type: 'reply', cmd: 'login', ok: false, error: 'cross_site', text: 'Error. A login from another site is refused' });
    }
  });

  it("takes curl's form login, a same-origin one, and declared JSON", async () => {
    const host = new URL(t.http.base).host;
    const own: Record<string, string>[] = [{}, { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }];
    for (const headers of own) {
      const res = await form(headers);
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect(await logoutIfIn(res)).toMatchObject({ ok: true });
    }
    const json = await fetch(`${t.http.base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://elsewhere.example' },
      body: JSON.stringify({ username: 'leia', password: 'alderaan' }),
    });
    expect(json.status).toBe(200);
    expect(await logoutIfIn(json)).toMatchObject({ ok: true });
  });
});

describe('ping over HTTP', () => {
  it('answers {"type":"pong"} with 200, with or without a token, as on TCP (PROTOCOL.md 4.17)', async () => {
    const bare = await fetch(`${t.http.base}/command`, { method: 'POST', body: 'ping' });
    expect(bare.status).toBe(200);
    expect(await bare.json()).toEqual({ type: 'pong' });
    const busy = await fetch(`${t.http.base}/command`, { method: 'POST', body: 'ping now' });
    expect(busy.status).toBe(400);
    expect(await busy.json()).toMatchObject({ ok: false, error: 'usage', text: 'Usage: ping' });
  });
});
