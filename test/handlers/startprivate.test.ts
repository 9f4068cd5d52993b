import { describe, expect, it } from 'vitest';
import { Server, type Client } from './harness.js';

const needsCli = 'Error. Private messaging needs the command-line client';

/** yoda and luke online, both with a command-line client listening for peers. */
async function twoClis(config = {}) {
  const server = await Server.start(config);
  const yoda = await server.login('yoda');
  const luke = await server.login('luke');
  expect(await server.run(yoda.caller, 'p2p 4501')).toMatchObject({ ok: true });
  expect(await server.run(luke.caller, 'p2p 10.1.2.3 4502')).toMatchObject({ ok: true });
  return { server, yoda, luke };
}

async function request(server: Server, from: Client, to: string) {
  const mark = await server.mark(to);
  const reply = await server.run(from.caller, `startprivate ${to}`);
  return { reply, events: await server.events(to, mark) };
}

describe('p2p [<host>] <port>', () => {
  it('records where the caller accepts peers; the host defaults to the caller\'s address', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda', '10.0.0.1');
    expect(await server.run(yoda.caller, 'p2p 4501')).toMatchObject({ type: 'reply', cmd: 'p2p', ok: true, host: '10.0.0.1', port: 4501 });
    expect(await server.run(yoda.caller, 'p2p 192.168.1.5 4502')).toMatchObject({ ok: true, host: '192.168.1.5', port: 4502 });
  });

  it('usage: p2p [<host>] <port>', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const line of ['p2p', 'p2p 0', 'p2p 65536', 'p2p port', 'p2p host port', 'p2p a b c']) {
      expect(await server.run(yoda.caller, line), line).toMatchObject({ ok: false, error: 'usage', text: 'Usage: p2p [<host>] <port>' });
    }
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
    await server.run(hans.caller, 'p2p 4503');
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
    await server.run(again.caller, 'p2p 4502');
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
    await server.run(yoda.caller, 'p2p 4501');
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
