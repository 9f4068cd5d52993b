import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTestReplica } from '../support/replica.js';
import { TcpClient } from '../support/tcp-client.js';
import { fingerprint } from '../support/fingerprints.js';

let t: Awaited<ReturnType<typeof startTestReplica>>;
const clients: TcpClient[] = [];

async function open() {
  const client = await TcpClient.open(t.replica.tcpPort);
  clients.push(client);
  return client;
}

beforeEach(async () => {
  t = await startTestReplica({ maxLineBytes: 256, maxBodyBytes: 512, maxMessageLength: 50 }, { lineTimeoutMs: 500 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await t.replica.close();
});

describe('TCP bad input', () => {
  it('answers an over-long line with too_long and goes on serving the connection', async () => {
    const client = await open();
    await client.command('login yoda wise');
    expect(await client.command(`message luke ${'x'.repeat(1000)}`)).toMatchObject({
      ok: false,
      error: 'too_long',
      text: 'Error. Line too long (at most 256 bytes)',
    });
    expect(await client.command('whoelse')).toMatchObject({ cmd: 'whoelse', ok: true });
  });

  it('rejects a message over the length limit', async () => {
    const client = await open();
    await client.command('login yoda wise');
    expect(await client.command(`message luke ${'y'.repeat(51)}`)).toMatchObject({ error: 'too_long' });
    expect(await client.command(`message luke ${'y'.repeat(50)}`)).toMatchObject({ ok: true });
  });

  it('rejects invalid UTF-8, control characters and NUL without passing them on', async () => {
    const client = await open();
    await client.command('login yoda wise');
    const luke = await open();
    await luke.command('login luke sunrise');
    const from = client.received.length;
    client.socket.write(Buffer.concat([Buffer.from('message luke bad '), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]));
    expect(await client.waitFor((m) => m.type === 'reply', 5000, from)).toMatchObject({
      ok: false,
      error: 'invalid_command',
      text: 'Error. Invalid command: control characters and invalid UTF-8 are not allowed',
    });
    expect(await client.command('message luke bell\u0007')).toMatchObject({ error: 'invalid_command' });
    expect(await client.command('message luke nul\u0000here')).toMatchObject({ error: 'invalid_command' });
    expect(await client.command('message luke fine é ünïcode')).toMatchObject({ ok: true });
    await luke.waitFor((m) => m.type === 'message');
    expect(luke.received.filter((m) => m.type === 'message').map((m) => m.text)).toEqual(['yoda: fine é ünïcode']);
  });

  it('accepts CRLF line endings', async () => {
    const client = await open();
    const from = client.received.length;
    client.socket.write('login yoda wise\r\n');
    expect(await client.waitFor((m) => m.type === 'reply', 5000, from)).toMatchObject({ ok: true });
  });

  it('closes a connection that never finishes its line, after a too_long reply that says so', async () => {
    const client = await open();
    client.socket.write('login yoda');
    await client.waitClosed(5000);
    // SPEC section 6: the limit is named in a reply, and that reply is the last word.
    expect(client.received).toEqual([
      { type: 'reply', cmd: '', ok: false, error: 'too_long', text: 'Error. Line not finished within 0.5 s. The connection is closed' },
    ]);
  });

  it('closes a connection that sends faster than it may, after a rate_limited reply that says so', async () => {
    const limited = await startTestReplica({}, { byteRate: 1000, byteBurst: 4000 });
    try {
      const client = await TcpClient.open(limited.replica.tcpPort);
      clients.push(client);
      for (let k = 0; k < 40 && !client.closed; k++) client.send('ping'.padEnd(200, ' '));
      await client.waitClosed(5000);
      // SPEC section 6: the limit is named in a reply, and that reply is the last word.
      expect(client.received.at(-1)).toEqual({
        type: 'reply',
        cmd: '',
        ok: false,
        error: 'rate_limited',
        text: 'Error. Sending too fast. The connection is closed; please reconnect and slow down',
      });
    } finally {
      await limited.replica.close();
    }
  });

  it('answers a PROXY header only from a trusted proxy', async () => {
    // From 192.0.2.1:8080 (no newline byte in it, so an untrusted peer's copy splits only at the signature's).
    const header = Buffer.from('0d0a0d0a000d0a515549540a2111000cc0000201cb0071071f900fa0', 'hex');
    // `p2p <port> <fingerprint>` without a host records the client address the server uses, and says it.
    const p2pHost = async (client: TcpClient, user: string, password: string) => {
      expect(await client.command(`login ${user} ${password}`)).toMatchObject({ ok: true });
      return (await client.command(`p2p 4501 ${fingerprint(1)}`)).host;
    };

    // Untrusted peer: the header is just bytes, four lines of them and no command.
    const untrusted = await open();
    untrusted.socket.write(Buffer.concat([header, Buffer.from('\n')]));
    await untrusted.waitFor(() => true, 5000, 4);
    expect(untrusted.received).toMatchObject(Array(5).fill({ type: 'reply', ok: false, error: 'invalid_command' }));
    expect(await p2pHost(untrusted, 'yoda', 'wise')).toBe('127.0.0.1');

    // Trusted peer: the header is taken off, and its address is the client's.
    const behind = await startTestReplica({}, { trustProxy: ['127.0.0.1'] });
    try {
      const viaProxy = await TcpClient.open(behind.replica.tcpPort);
      clients.push(viaProxy);
      viaProxy.socket.write(header);
      expect(await p2pHost(viaProxy, 'luke', 'sunrise')).toBe('192.0.2.1');
      expect(viaProxy.received.filter((m) => m.ok === false)).toEqual([]);
    } finally {
      await behind.replica.close();
    }
  });
});

describe('HTTP bad input', () => {
  it('answers an oversized body with 413 and JSON', async () => {
    const res = await fetch(`${t.http.base}/command`, { method: 'POST', body: 'x'.repeat(2000) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'too_long', text: 'Error. Request body too long (at most 512 bytes)' });
  });

  it('a chunked body is read whole, and one past the limit gets a 413 on a connection that goes on serving', async () => {
    const socket = connect(Number(new URL(t.http.base).port), '127.0.0.1');
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (text: string) => (received += text));
    const chunked = (parts: string[]) =>
      `POST /command HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n${parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('')}0\r\n\r\n`;
    try {
      // Two chunks of one line: read as one body (the line is a command, so no session: 401).
      socket.write(chunked(['who', 'else']));
      await vi.waitFor(() => expect(received).toContain('"error":"not_logged_in"'), { timeout: 10_000 });
      // 2,000 bytes in chunks of 400, none of them declared up front.
      socket.write(chunked(Array.from({ length: 5 }, () => 'x'.repeat(400))));
      await vi.waitFor(() => expect(received).toContain('Request body too long (at most 512 bytes)'), { timeout: 10_000 });
      expect(received).toMatch(/HTTP\/1\.1 413/);
      // The same connection answers the next request.
      socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
      await vi.waitFor(() => expect(received).toContain('{"ok":true,"text":"ok"}'), { timeout: 10_000 });
    } finally {
      socket.destroy();
    }
  });

  it('a client that leaves in the middle of its body leaves the replica serving', async () => {
    const socket = connect(Number(new URL(t.http.base).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /command HTTP/1.1\r\nhost: x\r\ncontent-length: 300\r\n\r\nwho');
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
    await vi.waitFor(async () => expect((await fetch(`${t.http.base}/healthz`)).status).toBe(200), { timeout: 10_000 });
  });

  it('answers malformed JSON, missing fields and unknown routes clearly', async () => {
    const bad = await fetch(`${t.http.base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'usage' });
    const missing = await fetch(`${t.http.base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"yoda"}' });
    expect(missing.status).toBe(400);
    const route = await fetch(`${t.http.base}/nowhere`);
    expect(route.status).toBe(404);
    expect(await route.json()).toMatchObject({ text: 'Error. Unknown route' });
    const events = await fetch(`${t.http.base}/events?after=abc`, { headers: { authorization: 'Bearer yoda:x' } });
    expect(events.status).toBe(400);
  });

  it('maps replies to the status codes of the spec', async () => {
    expect((await t.http.login('yoda', 'nope')).status).toBe(401);
    expect((await t.http.login('nobody', 'x')).status).toBe(401);
    const yoda = await t.http.login('yoda', 'wise');
    expect(yoda.status).toBe(200);
    expect((await t.http.login('yoda', 'wise')).status).toBe(409);
    const token = String(yoda.body.token);
    expect((await t.http.command(token, 'fly away')).status).toBe(400);
    expect((await t.http.command(token, 'message')).status).toBe(400);
    expect((await t.http.command('yoda:forged', 'whoelse')).status).toBe(401);
    const luke = String((await t.http.login('luke', 'sunrise')).body.token);
    await t.http.command(luke, 'block yoda');
    expect((await t.http.command(token, 'message luke hi')).status).toBe(403);
  });

  it('takes form fields, JSON lines and raw text lines', async () => {
    const form = await fetch(`${t.http.base}/login`, { method: 'POST', body: new URLSearchParams({ username: 'hans', password: 'falcon', extra: 'ignored' }) });
    expect(form.status).toBe(200);
    const token = String(((await form.json()) as Record<string, unknown>).token);
    const json = await fetch(`${t.http.base}/command`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ line: 'whoelse', unknown: 1 }),
    });
    expect(await json.json()).toMatchObject({ cmd: 'whoelse', ok: true });
    const raw = await fetch(`${t.http.base}/command`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: 'whoelse\n',
    });
    expect(await raw.json()).toMatchObject({ cmd: 'whoelse', ok: true });
  });

  it('rejects invalid UTF-8 in a body', async () => {
    const token = String((await t.http.login('hans', 'falcon')).body.token);
    const res = await fetch(`${t.http.base}/command`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: Buffer.from([0x6d, 0xff, 0xfe]),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_command' });
  });

  it('reports health and readiness', async () => {
    expect((await fetch(`${t.http.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.http.base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${t.http.metrics}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE im_commands_total counter$/m);
  });
});

describe('client address from a trusted proxy (PROXY protocol v2)', () => {
  it('locks the address named in the header, not the proxy', async () => {
    const behind = await startTestReplica({}, { trustProxy: ['127.0.0.1'] });
    const header = Buffer.from('0d0a0d0a000d0a515549540a2111000cc0000201cb0071071f90119c', 'hex'); // from 192.0.2.1
    try {
      const viaProxy = await TcpClient.open(behind.replica.tcpPort);
      clients.push(viaProxy);
      viaProxy.socket.write(header);
      expect(await viaProxy.command('login nobody1 x')).toMatchObject({ error: 'invalid_user', text: 'Invalid Username. Please try again' });
      await viaProxy.command('login nobody2 x');
      expect(await viaProxy.command('login nobody3 x')).toMatchObject({
        error: 'invalid_user',
        text: 'Invalid Username. Your address has been blocked. Please try again later',
      });
      const sameClient = await TcpClient.open(behind.replica.tcpPort);
      clients.push(sameClient);
      sameClient.socket.write(header);
      expect(await sameClient.command('login yoda wise')).toMatchObject({
        error: 'address_blocked',
        text: 'Your address is blocked due to multiple login failures. Please try again later',
      });
      const otherClient = await TcpClient.open(behind.replica.tcpPort);
      clients.push(otherClient);
      expect(await otherClient.command('login yoda wise')).toMatchObject({ ok: true });
    } finally {
      await behind.replica.close();
    }
  });
});

describe('client address from a trusted proxy (X-Forwarded-For)', () => {
  async function loginVia(base: string, forwardedFor: string, username: string) {
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'x-forwarded-for': forwardedFor },
      body: new URLSearchParams({ username, password: 'x' }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('locks the forwarded client when the peer is trusted, and ignores the header otherwise', async () => {
    const behind = await startTestReplica({}, { trustProxy: ['127.0.0.1'] });
    try {
      for (const name of ['ghost1', 'ghost2', 'ghost3']) await loginVia(behind.http.base, '203.0.113.9', name);
      expect(await loginVia(behind.http.base, '203.0.113.9', 'yoda')).toMatchObject({ status: 403, body: { error: 'address_blocked' } });
      expect((await loginVia(behind.http.base, '198.51.100.4', 'yoda')).body.error).toBe('invalid_password');
    } finally {
      await behind.replica.close();
    }
    // Not a trusted peer: the header is the client's own claim and changes nothing.
    for (const name of ['ghost1', 'ghost2', 'ghost3']) await loginVia(t.http.base, '203.0.113.9', name);
    expect((await loginVia(t.http.base, '198.51.100.4', 'yoda')).body.error).toBe('address_blocked');
  });
});

describe('the login deadline (--login-timeout)', () => {
  it('closes a connection that does not log in, after a reply that says so, and counts it', async () => {
    const strict = await startTestReplica({}, { loginTimeoutMs: 400 });
    try {
      const idle = await TcpClient.open(strict.replica.tcpPort);
      clients.push(idle);
      // Commands that need no session do not hold it open.
      expect(await idle.command('ping')).toEqual({ type: 'pong' });
      await idle.waitClosed(5000);
      expect(idle.received.at(-1)).toEqual({
        type: 'reply',
        cmd: '',
        ok: false,
        error: 'not_logged_in',
        text: 'Error. Not logged in within 0.4 s. The connection is closed',
      });
      expect(await strict.replica.metrics.render()).toMatch(/im_connections_closed_total\{reason="login_timeout"\} 1/);

      // A connection that logged in in time stays open past the deadline:
      // one opened after it, that does not log in, is closed first.
      const yoda = await TcpClient.open(strict.replica.tcpPort);
      clients.push(yoda);
      expect(await yoda.command('login yoda wise')).toMatchObject({ ok: true });
      const later = await TcpClient.open(strict.replica.tcpPort);
      clients.push(later);
      await later.waitClosed(5000);
      expect(yoda.closed).toBe(false);
      expect(await yoda.command('whoelse')).toMatchObject({ ok: true });
      await yoda.command('logout');
    } finally {
      await strict.replica.close();
    }
  });
});

describe('connection caps (--max-connections, --max-connections-per-address)', () => {
  it('refuses a connection over its address share or the replica cap with a reply that says so, counts it, and takes one again once another closes', async () => {
    const capped = await startTestReplica({}, { maxConnectionsPerAddress: 2, maxConnections: 3 });
    try {
      const open = async () => {
        const client = await TcpClient.open(capped.replica.tcpPort);
        clients.push(client);
        return client;
      };
      const [a, b] = [await open(), await open()];
      expect(await a.command('ping')).toEqual({ type: 'pong' });
      const third = await open();
      await third.waitClosed(5000);
      expect(third.received).toEqual([
        {
          type: 'reply',
          cmd: '',
          ok: false,
          error: 'too_many_connections',
          text: 'Error. Too many connections from your address (at most 2). Please close one and try again',
        },
      ]);
      expect(await capped.replica.metrics.render()).toMatch(/im_connections_closed_total\{reason="address_connections"\} 1/);
      b.close();
      await vi.waitFor(() => expect(capped.replica.tcpStats().connections).toBe(1), { timeout: 5000, interval: 20 });
      const again = await open();
      expect(await again.command('ping')).toEqual({ type: 'pong' });
    } finally {
      await capped.replica.close();
    }
  });

  it('the caps hold over TCP and HTTP together: a request over them gets a 503 that names the limit', async () => {
    const full = await startTestReplica({}, { maxConnectionsPerAddress: 0, maxConnections: 2 });
    const base = `http://127.0.0.1:${full.replica.httpPort}`;
    try {
      const held = [await TcpClient.open(full.replica.tcpPort), await TcpClient.open(full.replica.tcpPort)];
      clients.push(...held);
      await vi.waitFor(() => expect(full.replica.tcpStats().connections).toBe(2), { timeout: 5000, interval: 20 });
      const res = await fetch(`${base}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ type: 'reply', cmd: '', ok: false, error: 'too_many_connections', text: 'Error. The server has too many connections. Please try again later' });
      expect(await full.replica.metrics.render()).toMatch(/im_connections_closed_total\{reason="max_connections"\} 1/);
      held[0].close();
      await vi.waitFor(async () => expect((await fetch(`${base}/healthz`, { headers: { connection: 'close' } })).status).toBe(200), { timeout: 5000, interval: 50 });
    } finally {
      await full.replica.close();
    }
  });

  it('an HTTP connection counts toward its address share, as a TCP one does', async () => {
    const capped = await startTestReplica({}, { maxConnectionsPerAddress: 1, maxConnections: 0 });
    try {
      const held = await TcpClient.open(capped.replica.tcpPort);
      clients.push(held);
      const res = await fetch(`http://127.0.0.1:${capped.replica.httpPort}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: 'too_many_connections', text: 'Error. Too many connections from your address (at most 1). Please close one and try again' });
    } finally {
      await capped.replica.close();
    }
  });

  it('a connection the server closes while it has stopped reading it (lines piled up) is freed, not held forever', async () => {
    const t2 = await startTestReplica({ commandRate: 0 }, { maxConnectionsPerAddress: 0, maxConnections: 0 });
    try {
      for (let k = 0; k < 3; k++) {
        const client = await TcpClient.open(t2.replica.tcpPort);
        clients.push(client);
        expect(await client.command('login yoda wise')).toMatchObject({ ok: true });
        // The logout, then far more lines than the server reads ahead: its
        // socket is paused when the session ends and the connection closes.
        client.socket.write('logout\n' + 'whoelse\n'.repeat(20_000));
        await client.waitClosed(10_000);
        client.close();
        await vi.waitFor(() => expect(t2.replica.tcpStats().connections).toBe(0), { timeout: 10_000, interval: 50 });
      }
    } finally {
      await t2.replica.close();
    }
  }, 60_000);

  it('a replica at its cap refuses whoever comes next, whatever the address', async () => {
    const full = await startTestReplica({}, { maxConnectionsPerAddress: 0, maxConnections: 2 });
    try {
      const held = [await TcpClient.open(full.replica.tcpPort), await TcpClient.open(full.replica.tcpPort)];
      clients.push(...held);
      await vi.waitFor(() => expect(full.replica.tcpStats().connections).toBe(2), { timeout: 5000, interval: 20 });
      const refused = await TcpClient.open(full.replica.tcpPort);
      clients.push(refused);
      await refused.waitClosed(5000);
      expect(refused.received).toEqual([
        { type: 'reply', cmd: '', ok: false, error: 'too_many_connections', text: 'Error. The server has too many connections. Please try again later' },
      ]);
      expect(await full.replica.metrics.render()).toMatch(/im_connections_closed_total\{reason="max_connections"\} 1/);
    } finally {
      await full.replica.close();
    }
  });
});
