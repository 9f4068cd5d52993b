import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestReplica } from '../support/replica.js';

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
