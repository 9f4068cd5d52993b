import { describe, expect, it } from 'vitest';
import { Server, type Client } from './harness.js';
import { fingerprint } from '../support/fingerprints.js';

const needsCli = 'Error. Private messaging needs the command-line client';

const yodaFp = fingerprint(1);
const lukeFp = fingerprint(2);

/** yoda and luke online, both with a command-line client listening for peers. */
async function twoClis(config = {}) {
  const server = await Server.start(config);
  const yoda = await server.login('yoda');
  const luke = await server.login('luke');
  expect(await server.run(yoda.caller, `p2p 4501 ${yodaFp}`)).toMatchObject({ ok: true });
  expect(await server.run(luke.caller, `p2p 10.1.2.3 4502 ${lukeFp}`)).toMatchObject({ ok: true });
  return { server, yoda, luke };
}

async function request(server: Server, from: Client, to: string) {
  const mark = await server.mark(to);
  const reply = await server.run(from.caller, `startprivate ${to}`);
  return { reply, events: await server.events(to, mark) };
}

describe('p2p [<host>] <port> <fingerprint>', () => {
  const fp = fingerprint(3);
  const hostError = { ok: false, error: 'invalid_listener', text: "Error. The peer listener's host must be an IPv4 or IPv6 address that peers can connect to" };
  const portError = { ok: false, error: 'invalid_listener', text: "Error. The peer listener's port must be a number from 1 to 65535" };
  const fingerprintError = {
    ok: false,
    error: 'invalid_listener',
    text: "Error. p2p needs the SHA-256 fingerprint of the peer listener's certificate, as 32 uppercase hex pairs separated by colons",
  };

  it('records where the caller accepts peers and its certificate\'s fingerprint; the host defaults to the caller\'s address', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda', '10.0.0.1');
    expect(await server.run(yoda.caller, `p2p 4501 ${fp}`)).toEqual({
      type: 'reply',
      cmd: 'p2p',
      ok: true,
      text: '',
      host: '10.0.0.1',
      port: 4501,
      fingerprint: fp,
    });
    expect(await server.ctx.state.peerListener('yoda')).toEqual({ host: '10.0.0.1', port: 4501, fingerprint: fp });
    expect(await server.run(yoda.caller, `p2p 192.168.1.5 4502 ${fp}`)).toMatchObject({ ok: true, host: '192.168.1.5', port: 4502 });
    expect(await server.run(yoda.caller, `p2p 2001:DB8::7 4503 ${fp}`)).toMatchObject({ ok: true, host: '2001:db8::7', port: 4503 });
    expect(await server.run(yoda.caller, `p2p ::1 4504 ${fp}`)).toMatchObject({ ok: true, host: '::1', port: 4504 });
    // An IPv4 client on a dual-stack socket is dialled at its IPv4 address.
    expect(await server.run(yoda.caller, `p2p ::ffff:10.0.0.9 4505 ${fp}`)).toMatchObject({ ok: true, host: '10.0.0.9', port: 4505 });
    const mapped = await server.login('luke', '::ffff:10.0.0.2');
    expect(await server.run(mapped.caller, `p2p 4506 ${fp}`)).toMatchObject({ ok: true, host: '10.0.0.2', port: 4506 });
    const v6 = await server.login('hans', '2001:db8::42');
    expect(await server.run(v6.caller, `p2p 4507 ${fp}`)).toMatchObject({ ok: true, host: '2001:db8::42', port: 4507 });
  });

  it('the host is an IP address a peer can dial: no name, no unspecified, multicast or broadcast address, no zone', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const host of ['localhost', 'example.org', '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', '240.0.0.1',
      '::', '::ffff:0.0.0.0', 'ff02::1', 'fe80::1%eth0', '10.0.0.256', '010.0.0.1', '10.0.0', '10.0.0.1.2', '1::2::3', '[::1]', '12345::1']) {
      expect(await server.run(yoda.caller, `p2p ${host} 4501 ${fp}`), host).toEqual({ type: 'reply', cmd: 'p2p', ...hostError });
    }
    expect(await server.ctx.state.peerListener('yoda')).toBeNull();
  });

  it('the default host too: a caller whose address is not one a peer can dial is told so', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda', 'unknown');
    expect(await server.run(yoda.caller, `p2p 4501 ${fp}`)).toMatchObject(hostError);
  });

  it('the port is a number from 1 to 65535', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const port of ['0', '65536', '99999', '-1', '+80', '80.0', '0x50', 'port', '123456']) {
      expect(await server.run(yoda.caller, `p2p 10.0.0.1 ${port} ${fp}`), port).toMatchObject(portError);
      expect(await server.run(yoda.caller, `p2p ${port} ${fp}`), port).toMatchObject(portError);
    }
    expect(await server.run(yoda.caller, `p2p 10.0.0.1 1 ${fp}`)).toMatchObject({ ok: true, port: 1 });
    expect(await server.run(yoda.caller, `p2p 10.0.0.1 65535 ${fp}`)).toMatchObject({ ok: true, port: 65535 });
  });

  it('the fingerprint is required, in its one form: 32 uppercase hex pairs joined by colons', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const bare = fp.replace(/:/g, '');
    for (const bad of [fp.toLowerCase(), bare, `sha-256 ${fp}`.replace(' ', '_'), fp.slice(3), `${fp}:00`, fp.replace(/^../, 'G0'), fp.replace(/:/g, '-')]) {
      expect(await server.run(yoda.caller, `p2p 10.0.0.1 4501 ${bad}`), bad).toMatchObject(fingerprintError);
    }
    // The old form, `p2p <host> <port>`, is no longer enough: it names no certificate.
    expect(await server.run(yoda.caller, 'p2p 10.0.0.1 4501')).toMatchObject(fingerprintError);
    expect(await server.ctx.state.peerListener('yoda')).toBeNull();
  });

  it('usage: p2p [<host>] <port> <fingerprint>', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const line of ['p2p', 'p2p 4501', `p2p a b c ${fp}`, `p2p  4501 ${fp}`, `p2p 4501  ${fp}`, `p2p 4501 ${fp} `]) {
      expect(await server.run(yoda.caller, line), line).toMatchObject({ ok: false, error: 'usage', text: 'Usage: p2p [<host>] <port> <fingerprint>' });
    }
  });

  it('is not activity, and needs a session', async () => {
    const server = await Server.start();
    expect(await server.run(server.caller(), `p2p 4501 ${fp}`)).toMatchObject({ ok: false, error: 'not_logged_in' });
  });
});

describe('startprivate <user>', () => {
  it('asks <user>: private_request, <user> would like to chat privately. Accept? (y/n)', async () => {
    const { server, yoda } = await twoClis();
    const { reply, events } = await request(server, yoda, 'luke');
    expect(reply).toMatchObject({ type: 'reply', cmd: 'startprivate', ok: true });
    expect(events).toMatchObject([{ type: 'private_request', from: 'yoda', text: 'yoda would like to chat privately. Accept? (y/n)' }]);
    // Nobody's address travels before the answer.
    expect(reply).not.toHaveProperty('host');
    expect(reply).not.toHaveProperty('port');
  });

  it('the requester\'s address is not revealed by the request', async () => {
    const { server, yoda } = await twoClis();
    const { events } = await request(server, yoda, 'luke');
    expect(events[0]).not.toHaveProperty('host');
    expect(events[0]).not.toHaveProperty('port');
    expect(events[0]).not.toHaveProperty('token');
  });

  it('offline: Error. <user> is offline', async () => {
    const { server, yoda } = await twoClis();
    expect(await server.run(yoda.caller, 'startprivate hans')).toEqual({
      type: 'reply',
      cmd: 'startprivate',
      ok: false,
      error: 'offline',
      text: 'Error. hans is offline',
    });
  });

  it('offline after logout: Error. <user> is offline', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(luke.caller, 'logout');
    expect(await server.run(yoda.caller, 'startprivate luke')).toMatchObject({ error: 'offline', text: 'Error. luke is offline' });
  });

  it('blocked: Error. <user> has blocked you, and <user> is not asked', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(luke.caller, 'block yoda');
    const { reply, events } = await request(server, yoda, 'luke');
    expect(reply).toEqual({ type: 'reply', cmd: 'startprivate', ok: false, error: 'blocked', text: 'Error. luke has blocked you' });
    expect(events).toEqual([]);
  });

  it('self: Error. Cannot start private messaging with self', async () => {
    const { server, yoda } = await twoClis();
    expect(await server.run(yoda.caller, 'startprivate yoda')).toEqual({
      type: 'reply',
      cmd: 'startprivate',
      ok: false,
      error: 'self',
      text: 'Error. Cannot start private messaging with self',
    });
  });

  it('unknown: Error. Invalid user', async () => {
    const { server, yoda } = await twoClis();
    for (const target of ['vader', 'Luke', 'lu{ke}']) {
      expect(await server.run(yoda.caller, `startprivate ${target}`), target).toEqual({
        type: 'reply',
        cmd: 'startprivate',
        ok: false,
        error: 'invalid_user',
        text: 'Error. Invalid user',
      });
    }
  });

  it('the caller\'s client cannot accept peers: Error. Private messaging needs the command-line client', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const { reply, events } = await request(server, yoda, 'luke');
    expect(reply).toEqual({ type: 'reply', cmd: 'startprivate', ok: false, error: 'p2p_unsupported', text: needsCli });
    expect(events).toEqual([]);
  });

  it('usage: startprivate <user>', async () => {
    const { server, yoda } = await twoClis();
    for (const line of ['startprivate', 'startprivate luke now']) {
      expect(await server.run(yoda.caller, line), line).toMatchObject({ ok: false, error: 'usage', text: 'Usage: startprivate <user>' });
    }
  });
});

describe('acceptprivate <user>', () => {
  it('sends the requester a private_accept with the acceptor\'s host, port and the one-time token of the acceptor\'s reply', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    const mark = await server.mark('yoda');
    const reply = await server.run(luke.caller, 'acceptprivate yoda');
    expect(reply).toMatchObject({ type: 'reply', cmd: 'acceptprivate', ok: true, peer: 'yoda' });
    expect(reply.token).toEqual(expect.any(String));
    expect(String(reply.token).length).toBeGreaterThan(8);
    expect(await server.events('yoda', mark)).toMatchObject([
      { type: 'private_accept', peer: 'luke', host: '10.1.2.3', port: 4502, token: reply.token },
    ]);
  });

  it('relays the fingerprints: the acceptor\'s to the requester in private_accept, the requester\'s to the acceptor with the token', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    const mark = await server.mark('yoda');
    const reply = await server.run(luke.caller, 'acceptprivate yoda');
    expect(reply).toEqual({ type: 'reply', cmd: 'acceptprivate', ok: true, text: '', peer: 'yoda', token: reply.token, fingerprint: yodaFp });
    const [accept] = await server.events('yoda', mark);
    expect(accept).toEqual({
      type: 'private_accept',
      peer: 'luke',
      host: '10.1.2.3',
      port: 4502,
      fingerprint: lukeFp,
      token: reply.token,
      at: server.clock.now(),
      text: '',
      id: accept.id,
    });
  });

  it('relays each side\'s latest fingerprint: a client that advertised again (a new certificate) is known by the new one', async () => {
    const { server, yoda, luke } = await twoClis();
    const newYodaFp = fingerprint(4);
    const newLukeFp = fingerprint(5);
    await server.run(yoda.caller, 'startprivate luke');
    expect(await server.run(yoda.caller, `p2p 4501 ${newYodaFp}`)).toMatchObject({ ok: true });
    expect(await server.run(luke.caller, `p2p 10.1.2.3 4502 ${newLukeFp}`)).toMatchObject({ ok: true });
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'acceptprivate yoda')).toMatchObject({ ok: true, fingerprint: newYodaFp });
    expect(await server.events('yoda', mark)).toMatchObject([{ type: 'private_accept', fingerprint: newLukeFp }]);
  });

  it('a requester who went on in a client that takes no peers is not sent the acceptor\'s address', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    await server.run(yoda.caller, 'logout');
    const browser = await server.login('yoda');
    const mark = await server.mark('yoda');
    const reply = await server.run(luke.caller, 'acceptprivate yoda');
    expect(reply).toEqual({
      type: 'reply',
      cmd: 'acceptprivate',
      ok: false,
      error: 'p2p_unsupported',
      text: 'Error. yoda is no longer on the command-line client',
    });
    expect(await server.events('yoda', mark)).toEqual([]);
    await server.run(browser.caller, 'logout');
  });

  it('a requester who has gone offline: Error. <user> is offline, and nothing is sent', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    await server.run(yoda.caller, 'logout');
    expect(await server.run(luke.caller, 'acceptprivate yoda')).toMatchObject({ ok: false, error: 'offline', text: 'Error. yoda is offline' });
  });

  it('each accepted request gets a new token', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    const first = await server.run(luke.caller, 'acceptprivate yoda');
    await server.run(yoda.caller, 'startprivate luke');
    const second = await server.run(luke.caller, 'acceptprivate yoda');
    expect(second).toMatchObject({ ok: true });
    expect(second.token).not.toBe(first.token);
  });

  it('answering twice fails', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    expect(await server.run(luke.caller, 'acceptprivate yoda')).toMatchObject({ ok: true });
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'acceptprivate yoda')).toMatchObject({ ok: false, cmd: 'acceptprivate' });
    expect(await server.run(luke.caller, 'declineprivate yoda')).toMatchObject({ ok: false, cmd: 'declineprivate' });
    expect(await server.events('yoda', mark)).toEqual([]);
  });

  it('without a request it fails and reveals nothing', async () => {
    const { server, luke } = await twoClis();
    const mark = await server.mark('yoda');
    const reply = await server.run(luke.caller, 'acceptprivate yoda');
    expect(reply).toMatchObject({ ok: false, cmd: 'acceptprivate' });
    expect(reply).not.toHaveProperty('token');
    expect(await server.events('yoda', mark)).toEqual([]);
  });

  it('only the user asked can answer', async () => {
    const { server, yoda } = await twoClis();
    const hans = await server.login('hans');
    await server.run(hans.caller, `p2p 4503 ${fingerprint(6)}`);
    await server.run(yoda.caller, 'startprivate luke');
    const mark = await server.mark('yoda');
    expect(await server.run(hans.caller, 'acceptprivate yoda')).toMatchObject({ ok: false });
    expect(await server.events('yoda', mark)).toEqual([]);
  });

  it('a request is forgotten when the asked user logs out', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    await server.run(luke.caller, 'logout');
    const again = await server.login('luke');
    await server.run(again.caller, `p2p 4502 ${lukeFp}`);
    expect(await server.run(again.caller, 'acceptprivate yoda')).toMatchObject({ ok: false });
  });

  it('a request not answered within privateRequestTtl seconds can no longer be accepted', async () => {
    const { server, yoda, luke } = await twoClis({ privateRequestTtl: 120 });
    await server.run(yoda.caller, 'startprivate luke');
    server.clock.advance(121);
    await server.run(yoda.caller, 'touch');
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'acceptprivate yoda')).toMatchObject({ ok: false });
    expect(await server.events('yoda', mark)).toEqual([]);
  });

  it('the acceptor\'s client must accept peers too', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(yoda.caller, `p2p 4501 ${yodaFp}`);
    await server.run(yoda.caller, 'startprivate luke');
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'acceptprivate yoda')).toMatchObject({ ok: false, error: 'p2p_unsupported', text: needsCli });
    expect(await server.events('yoda', mark)).toEqual([]);
  });

  it('usage: acceptprivate <user>', async () => {
    const { server, luke } = await twoClis();
    expect(await server.run(luke.caller, 'acceptprivate')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: acceptprivate <user>' });
  });
});

describe('declineprivate <user>', () => {
  it('tells the requester: private_decline, without the decliner\'s address', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'declineprivate yoda')).toMatchObject({ type: 'reply', cmd: 'declineprivate', ok: true });
    const events = await server.events('yoda', mark);
    expect(events).toMatchObject([{ type: 'private_decline', peer: 'luke' }]);
    expect(events[0]).not.toHaveProperty('host');
    expect(events[0]).not.toHaveProperty('port');
    expect(events[0]).not.toHaveProperty('token');
  });

  it('answering twice fails', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    expect(await server.run(luke.caller, 'declineprivate yoda')).toMatchObject({ ok: true });
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'declineprivate yoda')).toMatchObject({ ok: false });
    expect(await server.run(luke.caller, 'acceptprivate yoda')).toMatchObject({ ok: false });
    expect(await server.events('yoda', mark)).toEqual([]);
  });

  it('without a request it fails', async () => {
    const { server, luke } = await twoClis();
    expect(await server.run(luke.caller, 'declineprivate hans')).toMatchObject({ ok: false, cmd: 'declineprivate' });
  });

  it('usage: declineprivate <user>', async () => {
    const { server, luke } = await twoClis();
    expect(await server.run(luke.caller, 'declineprivate')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: declineprivate <user>' });
  });
});

describe('private <user> <text>', () => {
  it('reaching the server: Error. Private messaging to <user> not enabled, and nothing is delivered', async () => {
    const { server, yoda } = await twoClis();
    const mark = await server.mark('luke');
    const reply = await server.run(yoda.caller, 'private luke psst, over here');
    expect(reply).toMatchObject({ type: 'reply', cmd: 'private', ok: false, text: 'Error. Private messaging to luke not enabled' });
    expect(await server.events('luke', mark)).toEqual([]);
  });

  it('even after the private chat was accepted: private lines never go through the server', async () => {
    const { server, yoda, luke } = await twoClis();
    await server.run(yoda.caller, 'startprivate luke');
    await server.run(luke.caller, 'acceptprivate yoda');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'private luke hi')).toMatchObject({ ok: false, text: 'Error. Private messaging to luke not enabled' });
    expect(await server.events('luke', mark)).toEqual([]);
  });

  it('usage: private <user> <text>', async () => {
    const { server, yoda } = await twoClis();
    expect(await server.run(yoda.caller, 'private luke')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: private <user> <text>' });
  });
});

describe('stopprivate <user>', () => {
  it('reaching the server: Error. Private messaging to <user> not enabled', async () => {
    const { server, yoda } = await twoClis();
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'stopprivate luke')).toMatchObject({
      type: 'reply',
      cmd: 'stopprivate',
      ok: false,
      text: 'Error. Private messaging to luke not enabled',
    });
    expect(await server.events('luke', mark)).toEqual([]);
  });

  it('usage: stopprivate <user>', async () => {
    const { server, yoda } = await twoClis();
    expect(await server.run(yoda.caller, 'stopprivate')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: stopprivate <user>' });
  });
});
