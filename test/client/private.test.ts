import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makePeerIdentity, type PeerIdentity } from '../../client/certificate.js';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { loginCli, stopClients, type Cli } from './cli.js';
import { FakeListener, ForwardingRelay, HangUp, ImpostorRelay, peerLabel, ServerPath, type StandIn } from './peer-path.js';

/* Peer-to-peer private chat (SPEC section 5) between real client processes. */
let server: RunningServer;
/** Raw connections: sessions on the server (logged out after each test) and knocks on a peer listener. */
const sessions: TcpClient[] = [];
const raw: TcpClient[] = [];

beforeAll(async () => {
  server = await startServer({ positional: ['60', '120'] });
});

afterEach(async () => {
  for (const client of raw.splice(0)) client.close();
  for (const session of sessions.splice(0)) {
    if (!session.closed) await session.command('logout');
    session.close();
  }
  await stopClients();
});

afterAll(async () => {
  await server?.stop();
});

/** Asks for a private chat from `from` to `to` and has `to` answer yes. */
async function askPrivate(from: Cli, to: Cli): Promise<void> {
  from.type(`startprivate ${to.name}`);
  await to.waitForLine(`${from.name} would like to chat privately. Accept? (y/n)`);
  to.type('y');
}

/** askPrivate, and both sides say the chat started. */
async function startPrivate(from: Cli, to: Cli): Promise<void> {
  await askPrivate(from, to);
  await to.waitForLine(`Start private messaging with ${from.name}`);
  await from.waitForLine(`Start private messaging with ${to.name}`);
}

/** What each user is told when the peer connection fails its fingerprint check (SPEC section 5, point 5). */
const unverified = (peer: string) => `Error. Private messaging with ${peer} could not be verified, so the connection was closed`;

describe('startprivate', () => {
  it('a declined request is reported to the requester and opens nothing', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    hans.type('startprivate yoda');
    await hans.waitForLine('Private messaging request sent to yoda');
    await yoda.waitForLine('hans would like to chat privately. Accept? (y/n)');
    yoda.type('n');
    await hans.waitForLine('yoda declined private messaging');
    hans.type('private yoda Hello?');
    await hans.waitForLine('Error. Private messaging to yoda not enabled');
    yoda.type('private hans Hello?');
    await yoda.waitForLine('Error. Private messaging to hans not enabled');
    expect(hans.output()).not.toContain('Start private messaging');
    expect(yoda.output()).not.toContain('Start private messaging');
  });

  it('refuses self, unknown, offline and blocking users with the texts of SPEC section 3', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    hans.type('startprivate hans');
    await hans.waitForLine('Error. Cannot start private messaging with self');
    hans.type('startprivate bob');
    await hans.waitForLine('Error. Invalid user');
    hans.type('startprivate vader');
    await hans.waitForLine('Error. vader is offline');
    yoda.type('block hans');
    await yoda.waitForLine('hans is blocked');
    hans.type('startprivate yoda');
    await hans.waitForLine('Error. yoda has blocked you');
    yoda.type('unblock hans');
    await yoda.waitForLine('hans is unblocked');
    expect(yoda.output()).not.toContain('would like to chat privately');
  });

  it('a y or n with no request waiting is an ordinary (invalid) command', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    hans.type('y');
    await hans.waitForLine('Error. Invalid command');
  });

  it('says a private chat is already open and asks nobody again, from either side', async () => {
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    await startPrivate(yoda, luke);
    yoda.type('startprivate luke');
    await yoda.waitForLine('Error. Private messaging with luke is already enabled');
    luke.type('startprivate yoda');
    await luke.waitForLine('Error. Private messaging with yoda is already enabled');
    // A request would have reached each inbox before these messages.
    yoda.type('message luke After the second ask');
    luke.type('message yoda After the second ask');
    await luke.waitForLine('yoda: After the second ask');
    await yoda.waitForLine('luke: After the second ask');
    expect(luke.count('yoda would like to chat privately. Accept? (y/n)')).toBe(1);
    expect(yoda.output()).not.toContain('would like to chat privately');
    expect(yoda.count('Private messaging request sent to luke')).toBe(1);
    expect(luke.output()).not.toContain('Private messaging request sent');
    // The chat itself is untouched.
    yoda.type('private luke Still here');
    await luke.waitForLine('yoda(private): Still here');
  });
});

describe('answering a private-chat request', () => {
  const question = (user: string) => `${user} would like to chat privately. Accept? (y/n)`;

  it('shows a waiting question again below later output, until it is answered; a decline says what it did', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const vader = await loginCli(server.tcpPort, 'vader', 'sithlord');
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    vader.type('startprivate hans');
    await hans.waitForLine(question('vader'));
    for (const n of [1, 2, 3]) luke.type(`message hans Chatter ${n}`);
    await hans.waitForLine('luke: Chatter 3');
    await hans.waitForLine(question('vader'), 2);
    expect(hans.lines().lastIndexOf(question('vader'))).toBeGreaterThan(hans.lines().indexOf('luke: Chatter 3'));

    hans.type('n');
    await hans.waitForLine('Declined private messaging with vader');
    await vader.waitForLine('hans declined private messaging');
    const shown = hans.count(question('vader'));

    // Another request, and more output: the reminder that follows names yoda alone.
    yoda.type('startprivate hans');
    await hans.waitForLine(question('yoda'));
    luke.type('message hans More chatter');
    await hans.waitForLine('luke: More chatter');
    await hans.waitForLine(question('yoda'), 2);
    expect(hans.count(question('vader'))).toBe(shown);
    expect(hans.output()).not.toContain('vader and');
    hans.type('n');
    await hans.waitForLine('Declined private messaging with yoda');
  });

  it('with several waiting, a plain y asks which; y <user> answers that one and a plain n the one left', async () => {
    const several = 'yoda and luke would like to chat privately. Accept? (y <user> / n <user>)';
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    yoda.type('startprivate hans');
    await hans.waitForLine(question('yoda'));
    luke.type('startprivate hans');
    await hans.waitForLine(question('luke'));
    // luke's question names luke alone: both are named below it.
    await hans.waitForLine(several);

    hans.type('y');
    await hans.waitForLine(several, 2);
    hans.type('y luke');
    await hans.waitForLine('Start private messaging with luke');
    await luke.waitForLine('Start private messaging with hans');
    // The one left is asked again.
    await hans.waitForLine(question('yoda'), 2);
    hans.type('n');
    await hans.waitForLine('Declined private messaging with yoda');
    await yoda.waitForLine('hans declined private messaging');

    // The plain y answered nobody: yoda was never accepted, luke never declined.
    expect(yoda.output()).not.toContain('Start private messaging');
    expect(luke.output()).not.toContain('declined');
    hans.type('private luke Chosen by name');
    await luke.waitForLine('hans(private): Chosen by name');
  });

  it('y <user> for a user who has not asked is refused with the server\'s words', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    hans.type('y vader');
    await hans.waitForLine('Error. vader has not asked to chat privately');
    hans.type('n vader');
    await hans.waitForLine('Error. vader has not asked to chat privately', 2);
  });
});

describe('closing a private chat', () => {
  it('a later block closes it and the blocked side is told only that it stopped', async () => {
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    const leia = await loginCli(server.tcpPort, 'leia', 'alderaan');
    await startPrivate(luke, leia);
    leia.type('block luke');
    await leia.waitForLine('luke is blocked');
    await leia.waitForLine('Stopped private messaging with luke');
    await luke.waitForLine('leia stopped private messaging');
    luke.type('private leia Are you there?');
    await luke.waitForLine('Error. Private messaging to leia not enabled');
    expect(luke.output()).not.toContain('blocked');
    leia.type('unblock luke');
    await leia.waitForLine('luke is unblocked');
  });

  it('logout closes it and the other side is told', async () => {
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    const leia = await loginCli(server.tcpPort, 'leia', 'alderaan');
    await startPrivate(leia, luke);
    luke.type('private leia Bye');
    await leia.waitForLine('luke(private): Bye');
    luke.type('logout');
    expect(await luke.waitForExit()).toBe(0);
    await leia.waitForLine('luke stopped private messaging');
    await leia.waitForLine('luke logged out');
    leia.type('private luke Gone?');
    await leia.waitForLine('Error. Private messaging to luke not enabled');
  });
});

describe('the peer listener', () => {
  /**
   * leia asks from a raw TCP connection with a certificate of her own, so the
   * test holds her key, the one-time token and the listener's address and
   * fingerprint from her private_accept event, and can knock on luke's
   * listener as anyone.
   */
  async function acceptedByLuke(luke?: Cli): Promise<{ luke: Cli; leia: PeerIdentity; host: string; port: number; token: string; fingerprint: string }> {
    luke ??= await loginCli(server.tcpPort, 'luke', 'sunrise');
    const leia = await makePeerIdentity();
    const session = await TcpClient.open(server.tcpPort);
    sessions.push(session);
    expect((await session.command('login leia alderaan')).ok).toBe(true);
    expect((await session.command(`p2p 127.0.0.1 9 ${leia.fingerprint}`)).ok).toBe(true);
    expect((await session.command('startprivate luke')).text).toBe('Private messaging request sent to luke');
    await luke.waitForLine('leia would like to chat privately. Accept? (y/n)', luke.count('leia would like to chat privately. Accept? (y/n)') + 1);
    luke.type('y');
    const accept = await session.waitFor((m) => m.type === 'private_accept');
    expect(accept.peer).toBe('luke');
    return { luke, leia, host: String(accept.host), port: Number(accept.port), token: String(accept.token), fingerprint: String(accept.fingerprint) };
  }

  /** A TLS connection to the listener with `identity`'s certificate, naming `token` as a requester does, that says `hello`. */
  async function knock(
    target: { host: string; port: number },
    identity: PeerIdentity,
    token: string,
    hello: Record<string, unknown>,
  ): Promise<TcpClient> {
    const peer = await TcpClient.openPeer({ ...target, key: identity.key, cert: identity.cert, servername: peerLabel(token) });
    raw.push(peer);
    peer.send(JSON.stringify(hello));
    return peer;
  }

  it('welcomes the right token from the certificate the server relayed, over TLS 1.3, with the certificate luke advertised', async () => {
    const { luke, leia, host, port, token, fingerprint } = await acceptedByLuke();
    const genuine = await knock({ host, port }, leia, token, { type: 'hello', from: 'leia', token });
    await genuine.waitFor((m) => m.type === 'welcome' && m.from === 'luke');
    const socket = genuine.socket as TLSSocket;
    expect(socket.getProtocol()).toBe('TLSv1.3');
    expect(socket.getPeerX509Certificate()?.fingerprint256).toBe(fingerprint);
    await luke.waitForLine('Start private messaging with leia');
    genuine.send(JSON.stringify({ type: 'private', text: 'It is me' }));
    await luke.waitForLine('leia(private): It is me');
    luke.type('private leia Welcome');
    await genuine.waitFor((m) => m.type === 'private' && m.text === 'Welcome');
  });

  it('refuses a wrong token and a token used once already; the genuine chat is untouched', async () => {
    const { luke, leia, host, port, token } = await acceptedByLuke();

    const impostor = await knock({ host, port }, leia, 'not-the-token', { type: 'hello', from: 'leia', token: 'not-the-token' });
    await impostor.waitFor((m) => m.type === 'refused');
    await impostor.waitClosed();

    const genuine = await knock({ host, port }, leia, token, { type: 'hello', from: 'leia', token });
    await genuine.waitFor((m) => m.type === 'welcome' && m.from === 'luke');
    await luke.waitForLine('Start private messaging with leia');

    const replay = await knock({ host, port }, leia, token, { type: 'hello', from: 'leia', token });
    await replay.waitFor((m) => m.type === 'refused');
    await replay.waitClosed();

    luke.type('private leia Welcome');
    await genuine.waitFor((m) => m.type === 'private' && m.text === 'Welcome');
    expect(luke.count('Start private messaging with leia')).toBe(1);
    expect(luke.output()).not.toContain('could not be verified');
  });

  it('refuses the right token presented under another name, which spends it', async () => {
    const { luke, leia, host, port, token } = await acceptedByLuke();
    const wrongUser = await knock({ host, port }, leia, token, { type: 'hello', from: 'vader', token });
    await wrongUser.waitFor((m) => m.type === 'refused');
    await wrongUser.waitClosed();
    const late = await knock({ host, port }, leia, token, { type: 'hello', from: 'leia', token });
    await late.waitFor((m) => m.type === 'refused');
    expect(luke.output()).not.toContain('Start private messaging');
    expect(luke.output()).not.toContain('vader');
  });

  it('refuses a requester with the right token but another certificate, and says it could not be verified', async () => {
    const { luke, leia, host, port, token } = await acceptedByLuke();
    const stranger = await makePeerIdentity();
    const impostor = await knock({ host, port }, stranger, token, { type: 'hello', from: 'leia', token });
    await impostor.waitFor((m) => m.type === 'unverified');
    await impostor.waitClosed();
    await luke.waitForLine(unverified('leia'));
    // The token went with that attempt: not even leia's own certificate gets in with it now.
    const late = await knock({ host, port }, leia, token, { type: 'hello', from: 'leia', token });
    await late.waitFor((m) => m.type === 'refused');
    expect(impostor.received.map((m) => m.type)).toEqual(['unverified']);
    expect(luke.output()).not.toContain('Start private messaging');
  });

  it('drops a connection that does not finish its TLS handshake, and takes at most 8 unfinished ones at once', async () => {
    const { luke, leia, host, port, token } = await acceptedByLuke();
    const silent: TcpClient[] = [];
    for (let n = 0; n < 8; n++) silent.push(await TcpClient.open(port, host));
    raw.push(...silent);
    const ninth = await TcpClient.open(port, host);
    raw.push(ninth);
    // Over the cap: closed at once, while the eight before it still wait out their deadline.
    await ninth.waitClosed();
    expect(silent.filter((c) => c.closed).length).toBe(0);
    // A few seconds later each of the eight is dropped, having sent nothing.
    for (const client of silent) await client.waitClosed(20_000);
    // And the listener takes its peer again.
    const genuine = await knock({ host, port }, leia, token, { type: 'hello', from: 'leia', token });
    await genuine.waitFor((m) => m.type === 'welcome' && m.from === 'luke');
    await luke.waitForLine('Start private messaging with leia');
  }, 40_000);

  it('shows no control characters a peer sends', async () => {
    const { luke, leia, host, port, token } = await acceptedByLuke();
    const peer = await knock({ host, port }, leia, token, { type: 'hello', from: 'leia', token });
    await peer.waitFor((m) => m.type === 'welcome');
    peer.send(JSON.stringify({ type: 'private', text: 'clear\u001b[2Jscreen' }));
    await luke.waitForLine('leia(private): clear?[2Jscreen');
  });
});

describe('between the peers (SPEC section 5, point 5)', () => {
  /** Closed after each test. */
  const pieces: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    // The clients log out through the pieces first: yoda's way to the server is one of them.
    await stopClients();
    await Promise.all(pieces.splice(0).map((piece) => piece.close()));
  });

  /**
   * yoda reaches the server through a hop that sends him to `standIn` when
   * luke accepts; luke reaches it directly. yoda asks, luke says yes.
   */
  async function ask(standIn: StandIn): Promise<{ yoda: Cli; luke: Cli; path: ServerPath }> {
    const path = await ServerPath.start(server.tcpPort, standIn);
    pieces.push(standIn, path);
    const yoda = await loginCli(path.port, 'yoda', 'wise');
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    await askPrivate(yoda, luke);
    return { yoda, luke, path };
  }

  it('a relay that only forwards carries neither the private text nor the token: only TLS records', async () => {
    const relay = await ForwardingRelay.start();
    const { yoda, luke, path } = await ask(relay);
    await luke.waitForLine('Start private messaging with yoda');
    await yoda.waitForLine('Start private messaging with luke');
    // Through the relay, both ways.
    yoda.type('private luke The plans are in the droid');
    await luke.waitForLine('yoda(private): The plans are in the droid');
    luke.type('private yoda Understood, master');
    await yoda.waitForLine('luke(private): Understood, master');
    yoda.type('stopprivate luke');
    await luke.waitForLine('yoda stopped private messaging');

    const [accept] = path.accepts;
    const bytes = relay.bytes();
    // The chat did go through the relay, as TLS: a handshake record first.
    expect(bytes.length).toBeGreaterThan(1000);
    expect(bytes[0]).toBe(0x16);
    for (const secret of ['The plans are in the droid', 'Understood, master', accept.token, '"hello"', '"private"', '"stop"', 'yoda', 'luke']) {
      expect(bytes.includes(Buffer.from(secret)), secret).toBe(false);
    }
  });

  it('a relay that answers with its own certificate is refused on both sides, and both users are told', async () => {
    const relay = await ImpostorRelay.start();
    const { yoda, luke } = await ask(relay);
    await yoda.waitForLine(unverified('luke'));
    await luke.waitForLine(unverified('yoda'));
    // yoda hung up before saying anything: the relay never saw the token.
    expect(relay.fromRequester).toBe('');
    yoda.type('private luke Are you there?');
    await yoda.waitForLine('Error. Private messaging to luke not enabled');
    expect(yoda.output()).not.toContain('Start private messaging');
    expect(luke.output()).not.toContain('Start private messaging');
  });

  it('a listener that closes without answering: the requester says it could not connect', async () => {
    const { yoda, luke } = await ask(await HangUp.start());
    await yoda.waitForLine('Error. Could not connect to luke for private messaging');
    expect(yoda.output()).not.toContain('Start private messaging');
    expect(luke.output()).not.toContain('Start private messaging');
  });

  it('a listener that presents the right token but the wrong certificate is refused, and is sent nothing', async () => {
    const fake = await FakeListener.start('luke');
    const { yoda, luke } = await ask(fake);
    await yoda.waitForLine(unverified('luke'));
    expect(fake.connections).toBe(1);
    expect(fake.fromRequester).toBe('');
    expect(yoda.output()).not.toContain('Start private messaging');
    // luke's listener never heard from yoda: there is nothing it could tell luke.
    expect(luke.output()).not.toContain('Start private messaging');
  });
});
