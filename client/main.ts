#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Commands } from './commands.js';
import { CertificateRejected, HttpAnswered, ServerLink, type LinkOptions } from './connection.js';
import { logIn } from './login.js';
import { PeerChat } from './peer.js';
import { PrivateRequests } from './private-requests.js';
import { clientTexts, eventText, printable } from './render.js';
import { Terminal } from './terminal.js';

/** How long leaving waits for the server to confirm the logout. */
const logoutWaitMs = 5_000;

/**
 * `<server_host> <server_port>` as in the assignment, plus `--tls` (the
 * server is behind a TLS-terminating load balancer) and `--ca FILE` (trust
 * only that CA; implies --tls). Null for a wrong argument.
 */
function parseArgs(argv: string[]): { host: string; port: number; tls: boolean; caFile?: string } | null {
  const positional: string[] = [];
  let tls = false;
  let caFile: string | undefined;
  for (let k = 0; k < argv.length; k++) {
    if (argv[k] === '--tls') tls = true;
    else if (argv[k] === '--ca' && argv[k + 1]) caFile = argv[++k];
    else if (argv[k].startsWith('--')) return null;
    else positional.push(argv[k]);
  }
  if (positional.length !== 2) return null;
  const [host, portText] = positional;
  const port = Number(portText);
  if (host === '' || !/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) return null;
  return { host, port, tls: tls || caFile !== undefined, caFile };
}

/** The link's options; exits 2 with a clear error when the CA file is unusable. */
function linkOptions(target: NonNullable<ReturnType<typeof parseArgs>>): LinkOptions {
  const { host, port } = target;
  if (!target.tls) return { host, port };
  if (target.caFile === undefined) return { host, port, tls: {} };
  let ca: string;
  try {
    ca = readFileSync(target.caFile, 'utf8');
  } catch (err) {
    process.stderr.write(clientTexts.caUnreadable(target.caFile, (err as Error).message) + '\n');
    process.exit(2);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    process.stderr.write(clientTexts.caUnreadable(target.caFile, 'no PEM certificate in it') + '\n');
    process.exit(2);
  }
  return { host, port, tls: { ca } };
}

/**
 * The command-line client (SPEC sections 2, 3 and 5):
 * `client <server_host> <server_port>`. Logs in, then runs typed commands
 * until the session ends; Ctrl-C, Ctrl-D and SIGTERM log out first. A
 * session the server could not resume ends with a fresh login dialogue on
 * the same server.
 */
async function main(): Promise<void> {
  const target = parseArgs(process.argv.slice(2));
  if (!target) {
    process.stderr.write(clientTexts.usage + '\n');
    process.exit(2);
  }
  const options = linkOptions(target);

  const terminal = new Terminal();
  const requests = new PrivateRequests((text) => terminal.print(text));
  /** Prints output that is not the waiting request's question: the question scrolls up and is shown again later. */
  const print = (text: string) => {
    terminal.print(text);
    requests.scrolled();
  };
  const peers = new PeerChat(print);
  let loggedIn = false;
  let leaving = false;
  let exiting = false;
  /** The server said it is shutting down: the drop that follows is no surprise. */
  let shuttingDown = false;
  /** Settles when the server refuses to resume the session: the command loop gives way to a new login. */
  let sessionGone = deferred();

  const exit = async (code: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    terminal.finish();
    requests.clear();
    // Peers are told the chat ended before the process goes.
    await peers.stopAll();
    link.close();
    terminal.close();
    process.exit(code);
  };

  const link = new ServerLink(options, {
    event(event) {
      if (event.type === 'session_end' && event.reason !== 'shutdown') terminal.finish();
      const text = eventText(event);
      if (event.type === 'private_request') {
        // The question is the server's text; from now on the reminder keeps it in sight.
        if (text !== null) terminal.print(text);
        requests.add(String(event.from));
      } else if (text !== null) print(text);
      if (event.type === 'presence' && event.state === 'out') requests.remove(String(event.user));
      if (event.type === 'private_accept') {
        peers.connect(String(event.peer), String(event.host), Number(event.port), String(event.token), String(event.fingerprint));
      }
      if (event.type === 'session_end') {
        if (event.reason === 'shutdown') shuttingDown = true;
        else void exit(0);
      }
    },
    lost() {
      if (!shuttingDown) print(clientTexts.connectionLost);
    },
    resumed() {
      shuttingDown = false;
      print(clientTexts.reconnected);
    },
    sessionLost(reply) {
      shuttingDown = false;
      loggedIn = false;
      requests.clear();
      // The server's own words, then what happens next: two sentences, one "Error." at most in each.
      if (reply.text) print(printable(reply.text, true));
      // Leaving already: there is no session left to log out of, nor a reason to log in again.
      if (leaving) return void exit(1);
      print(clientTexts.sessionLost);
      sessionGone.resolve();
    },
    closed() {
      if (exiting) return;
      print(clientTexts.connectionClosed);
      void exit(1);
    },
  });
  const commands = new Commands(link, peers, requests, print);

  /** Ctrl-C, Ctrl-D, SIGTERM: log out and wait for the server's word; twice: go now. */
  const leave = (): void => {
    if (leaving || !loggedIn) {
      void exit(130);
      return;
    }
    leaving = true;
    // The session_end that answers the logout ends the process.
    void link.send('logout');
    setTimeout(() => void exit(1), logoutWaitMs);
  };
  terminal.onInterrupt(leave);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, leave);

  /** Typed lines that never reached the server are named, so nothing vanishes unsaid. */
  const reportUnsent = (lines: string[]): void => {
    for (const line of lines) if (line.trim() !== '') print(clientTexts.notSent(verbOf(line)));
  };

  /** Runs typed commands until input ends ('quit') or the session is lost ('lost'). */
  const runCommands = async (): Promise<'quit' | 'lost'> => {
    const lost = sessionGone.promise.then((): typeof lostMark => lostMark);
    terminal.showPrompt();
    for (;;) {
      if (sessionGone.settled) return 'lost';
      const line = await Promise.race([terminal.nextLine(), lost]);
      if (line === lostMark) {
        // The line being waited for now belongs to the login dialogue.
        terminal.cancelRead();
        return 'lost';
      }
      if (line === null) return 'quit';
      if (sessionGone.settled) {
        reportUnsent([line]);
        return 'lost';
      }
      if (leaving) continue;
      await commands.run(line);
      terminal.showPrompt();
    }
  };

  try {
    await link.open();
  } catch (err) {
    const where = `${target.host}:${target.port}`;
    if (err instanceof CertificateRejected) print(clientTexts.certificateRejected(where, err.message));
    else if (err instanceof HttpAnswered) print(clientTexts.httpPort(where));
    else print(clientTexts.cannotConnect(where, (err as Error).message));
    return exit(1);
  }

  for (;;) {
    const login = await logIn(terminal, link);
    if ('exitCode' in login) return exit(login.exitCode);
    loggedIn = true;
    void link.advertise(await peers.listen(login.user, link.localAddress));
    if ((await runCommands()) === 'quit') return leave();
    // Lines typed while the client tried to resume are not commands of the new session.
    reportUnsent(terminal.discardTyped());
    sessionGone = deferred();
  }
}

const lostMark = Symbol('session lost');

function verbOf(line: string): string {
  return line.trim().split(' ')[0];
}

/** A promise with its resolve at hand, and whether it has settled. */
function deferred(): { promise: Promise<void>; resolve(): void; settled: boolean } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const handle = {
    promise,
    settled: false,
    resolve() {
      handle.settled = true;
      resolve();
    },
  };
  return handle;
}

void main();
