import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { loginCli, stopClients, type Cli } from './cli.js';

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
async function startPrivate(from: Cli, to: Cli): Promise<void> {
  from.type(`startprivate ${to.name}`);
  await to.waitForLine(`${from.name} would like to chat privately. Accept? (y/n)`);
  to.type('y');
  await to.waitForLine(`Start private messaging with ${from.name}`);
  await from.waitForLine(`Start private messaging with ${to.name}`);
}

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
   * leia asks from a raw TCP connection, so the test holds the one-time token
   * and the listener's address from her private_accept event, and can knock
   * on luke's listener as anyone.
   */
  async function acceptedByLuke(): Promise<{ luke: Cli; host: string; port: number; token: string }> {
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    const leia = await TcpClient.open(server.tcpPort);
    sessions.push(leia);
    expect((await leia.command('login leia alderaan')).ok).toBe(true);
    expect((await leia.command('p2p 127.0.0.1 9')).ok).toBe(true);
    expect((await leia.command('startprivate luke')).text).toBe('Private messaging request sent to luke');
    await luke.waitForLine('leia would like to chat privately. Accept? (y/n)');
    luke.type('y');
    const accept = await leia.waitFor((m) => m.type === 'private_accept');
    expect(accept.peer).toBe('luke');
    return { luke, host: String(accept.host), port: Number(accept.port), token: String(accept.token) };
  }

  async function knock(host: string, port: number, hello: Record<string, unknown>): Promise<TcpClient> {
    const peer = await TcpClient.open(port, host);
    raw.push(peer);
    peer.send(JSON.stringify(hello));
    return peer;
  }

  it('refuses a wrong token, a right token from the wrong user, and a token used once already', async () => {
    const { luke, host, port, token } = await acceptedByLuke();

    const impostor = await knock(host, port, { type: 'hello', from: 'leia', token: 'not-the-token' });
    await impostor.waitFor((m) => m.type === 'refused');
    await impostor.waitClosed();

    const wrongUser = await knock(host, port, { type: 'hello', from: 'vader', token });
    await wrongUser.waitFor((m) => m.type === 'refused');
    await wrongUser.waitClosed();

    const genuine = await knock(host, port, { type: 'hello', from: 'leia', token });
    await genuine.waitFor((m) => m.type === 'welcome' && m.from === 'luke');
    await luke.waitForLine('Start private messaging with leia');
    genuine.send(JSON.stringify({ type: 'private', text: 'It is me' }));
    await luke.waitForLine('leia(private): It is me');

    const replay = await knock(host, port, { type: 'hello', from: 'leia', token });
    await replay.waitFor((m) => m.type === 'refused');
    await replay.waitClosed();

    // The genuine chat is untouched by the refused ones.
    luke.type('private leia Welcome');
    await genuine.waitFor((m) => m.type === 'private' && m.text === 'Welcome');
    expect(luke.count('Start private messaging with leia')).toBe(1);
    expect(luke.output()).not.toContain('vader');
  });

  it('shows no control characters a peer sends', async () => {
    const { luke, host, port, token } = await acceptedByLuke();
    const peer = await knock(host, port, { type: 'hello', from: 'leia', token });
    await peer.waitFor((m) => m.type === 'welcome');
    peer.send(JSON.stringify({ type: 'private', text: 'clear\u001b[2Jscreen' }));
    await luke.waitForLine('leia(private): clear?[2Jscreen');
  });
});
