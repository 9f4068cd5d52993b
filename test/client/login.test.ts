import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../support/server.js';
import { loginCli, startCli, stopClients } from './cli.js';

/* The client's start, login dialogue and ways out (SPEC sections 2 and 7). */
let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ positional: ['60', '120'] });
});

afterEach(async () => {
  await stopClients();
});

afterAll(async () => {
  await server?.stop();
});

describe('client arguments', () => {
  it.each([[[]], [['127.0.0.1']], [['127.0.0.1', 'port']], [['127.0.0.1', '70000']], [['a', '1', 'b']]])(
    'prints the usage and exits 2 for %j',
    async (args) => {
      const cli = startCli('usage', 0, args);
      expect(await cli.waitForExit()).toBe(2);
      expect(cli.errors()).toContain('Usage: client <server_host> <server_port>');
    },
  );

  it('says so and exits non-zero when no server listens', async () => {
    const probe = await startServer({ positional: ['60', '120'] });
    const port = probe.tcpPort;
    await probe.stop();
    const cli = startCli('nobody', port);
    expect(await cli.waitForExit()).not.toBe(0);
    expect(cli.output()).toContain(`Error. Cannot connect to the server at 127.0.0.1:${port}`);
  });

  it('pointed at the HTTP port, names it and the default TCP port at once, asks nothing and exits 1', async () => {
    const cli = startCli('wrong port', server.httpPort);
    expect(await cli.waitForExit()).toBe(1);
    expect(cli.lines()).toEqual([
      `Error. 127.0.0.1:${server.httpPort} answered in HTTP: this looks like the server's HTTP port. The client speaks the server's TCP protocol, which listens on port 4000 by default`,
    ]);
    expect(cli.output()).not.toContain('Username:');
  });
});

describe('login', () => {
  it('a wrong password asks for the password again, not the username', async () => {
    const cli = startCli('obiwan', server.tcpPort);
    await cli.waitForText('Username: ');
    cli.type('obiwan');
    await cli.waitForText('Password: ');
    cli.type('sith');
    await cli.waitForLine('Invalid Password. Please try again');
    await cli.waitForText('Password: ', 2);
    cli.type('kenobi');
    await cli.waitForLine('Welcome to the greatest messaging application ever!');
    expect(cli.output().split('Username: ').length - 1).toBe(1);
    // The password was never printed.
    expect(cli.output()).not.toContain('kenobi');
  });

  it('the third wrong password blocks the account and exits non-zero; the right one is then refused', async () => {
    const cli = startCli('chewy', server.tcpPort);
    await cli.waitForText('Username: ');
    cli.type('chewy');
    for (let attempt = 1; attempt <= 3; attempt++) {
      await cli.waitForText('Password: ', attempt);
      cli.type('ewok');
    }
    await cli.waitForLine('Invalid Password. Your account has been blocked. Please try again later');
    expect(await cli.waitForExit()).not.toBe(0);
    expect(cli.count('Invalid Password. Please try again')).toBe(2);

    const again = startCli('chewy', server.tcpPort);
    await again.waitForText('Username: ');
    again.type('chewy');
    await again.waitForText('Password: ');
    again.type('wookie');
    await again.waitForLine('Your account is blocked due to multiple login failures. Please try again later');
    expect(await again.waitForExit()).not.toBe(0);
  });

  it('an unknown user asks for the username again', async () => {
    const cli = startCli('r2d2', server.tcpPort);
    await cli.waitForText('Username: ');
    cli.type('bob');
    await cli.waitForText('Password: ');
    cli.type('secret');
    await cli.waitForLine('Invalid Username. Please try again');
    await cli.waitForText('Username: ', 2);
    cli.type('r2d2');
    await cli.waitForText('Password: ', 2);
    cli.type('beepboop');
    await cli.waitForLine('Welcome to the greatest messaging application ever!');
  });

  it('a user already logged in elsewhere is refused and the username asked again', async () => {
    await loginCli(server.tcpPort, 'c3po', 'protocol');
    const second = startCli('c3po again', server.tcpPort);
    await second.waitForText('Username: ');
    second.type('c3po');
    await second.waitForText('Password: ');
    second.type('protocol');
    await second.waitForLine('This user is already logged in');
    await second.waitForText('Username: ', 2);
  });

  it('shows the messages stored while the user was away, after the welcome', async () => {
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    yoda.type('message vader Come to the light side');
    yoda.type('message vader Please');
    // Replies come in command order: once this one is shown, both messages are stored.
    yoda.type('hello?');
    await yoda.waitForLine('Error. Invalid command');
    const vader = await loginCli(server.tcpPort, 'vader', 'sithlord');
    await vader.waitForLine('yoda: Please');
    const lines = vader.lines();
    const welcome = lines.indexOf('Welcome to the greatest messaging application ever!');
    expect(lines.indexOf('yoda: Come to the light side')).toBeGreaterThan(welcome);
    expect(lines.indexOf('yoda: Please')).toBeGreaterThan(lines.indexOf('yoda: Come to the light side'));
  });
});

describe('leaving', () => {
  it('logout exits 0 and the others see it', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const lando = await loginCli(server.tcpPort, 'lando', 'cloudcity');
    await hans.waitForLine('lando logged in');
    lando.type('logout');
    await lando.waitForLine('You have been logged out');
    expect(await lando.waitForExit()).toBe(0);
    await hans.waitForLine('lando logged out');
  });

  it('Ctrl-D (end of input) logs out first', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const lando = await loginCli(server.tcpPort, 'lando', 'cloudcity');
    await hans.waitForLine('lando logged in');
    lando.endInput();
    expect(await lando.waitForExit()).toBe(0);
    await hans.waitForLine('lando logged out');
  });

  it('Ctrl-C (SIGINT) logs out first', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const lando = await loginCli(server.tcpPort, 'lando', 'cloudcity');
    await hans.waitForLine('lando logged in');
    lando.child.kill('SIGINT');
    expect(await lando.waitForExit()).toBe(0);
    await lando.waitForLine('You have been logged out');
    await hans.waitForLine('lando logged out');
  });

  it('piped commands all run, in order, before the logout at the end of input', async () => {
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    const lando = await loginCli(server.tcpPort, 'lando', 'cloudcity');
    for (let i = 1; i <= 5; i++) lando.type(`message hans Line ${i}`);
    lando.endInput();
    expect(await lando.waitForExit()).toBe(0);
    await hans.waitForLine('lando logged out');
    const received = hans.lines().filter((line) => line.startsWith('lando: '));
    expect(received).toEqual([1, 2, 3, 4, 5].map((i) => `lando: Line ${i}`));
  });
});

describe('inactivity timeout', () => {
  let quick: RunningServer;

  beforeAll(async () => {
    quick = await startServer({ positional: ['60', '3'] });
  });

  afterAll(async () => {
    await stopClients();
    await quick?.stop();
  });

  it('the client prints the reason and exits 0; the others see the logout', async () => {
    const hans = await loginCli(quick.tcpPort, 'hans', 'falcon');
    // hans keeps busy from his login on, however long lando's client takes to start; lando says nothing.
    const busy = setInterval(() => hans.type('whoelse'), 1000);
    try {
      const lando = await loginCli(quick.tcpPort, 'lando', 'cloudcity');
      await hans.waitForLine('lando logged in');
      await lando.waitForLine('You have been logged out due to inactivity', 1, 20_000);
      expect(await lando.waitForExit()).toBe(0);
      await hans.waitForLine('lando logged out');
    } finally {
      clearInterval(busy);
    }
  });

  it('private and stopprivate count as activity (the client sends touch)', async () => {
    const hans = await loginCli(quick.tcpPort, 'hans', 'falcon');
    const started = Date.now();
    // Twice the timeout of nothing but private-chat lines (refused locally).
    while (Date.now() - started < 6000) {
      hans.type('stopprivate yoda');
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
    expect(hans.output()).not.toContain('You have been logged out');
    expect(hans.running).toBe(true);
    expect(hans.count('Error. Private messaging to yoda not enabled')).toBeGreaterThan(5);
    // And the touch replies themselves are not printed.
    expect(hans.lines().filter((line) => line !== '' && !line.startsWith('Error. Private') && !line.endsWith(': '))).toEqual([
      'Welcome to the greatest messaging application ever!',
    ]);
    await hans.waitForLine('You have been logged out due to inactivity', 1, 20_000);
  });
});
