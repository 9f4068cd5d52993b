#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Commands } from './commands.js';
import { CertificateRejected, HttpAnswered, ServerLink, type LinkOptions } from './connection.js';
import { logIn } from './login.js';
import { PeerChat } from './peer.js';
import { clientTexts, eventText } from './render.js';
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
 * until the session ends; Ctrl-C, Ctrl-D and SIGTERM log out first.
 */
async function main(): Promise<void> {
  const target = parseArgs(process.argv.slice(2));
  if (!target) {
    process.stderr.write(clientTexts.usage + '\n');
    process.exit(2);
  }
  const options = linkOptions(target);

  const terminal = new Terminal();
  const print = (text: string) => terminal.print(text);
  const peers = new PeerChat(print);
  let loggedIn = false;
  let leaving = false;
  let exiting = false;
  /** The server said it is shutting down: the drop that follows is no surprise. */
  let shuttingDown = false;

  const exit = async (code: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    terminal.finish();
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
      if (text !== null) print(text);
      if (event.type === 'private_request') commands.asked(String(event.from));
      if (event.type === 'private_accept') {
        peers.connect(String(event.peer), String(event.host), Number(event.port), String(event.token));
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
    failed(text) {
      if (exiting) return;
      print(loggedIn ? clientTexts.notResumed(text) : clientTexts.connectionClosed);
      void exit(1);
    },
  });
  const commands = new Commands(link, peers, print);

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

  try {
    await link.open();
  } catch (err) {
    const where = `${target.host}:${target.port}`;
    if (err instanceof CertificateRejected) print(clientTexts.certificateRejected(where, err.message));
    else if (err instanceof HttpAnswered) print(clientTexts.httpPort(where));
    else print(clientTexts.cannotConnect(where, (err as Error).message));
    return exit(1);
  }

  const login = await logIn(terminal, link);
  if ('exitCode' in login) return exit(login.exitCode);
  loggedIn = true;
  void link.advertise(await peers.listen(login.user));

  terminal.showPrompt();
  for (;;) {
    const line = await terminal.nextLine();
    if (line === null) return leave();
    if (leaving) continue;
    await commands.run(line);
    terminal.showPrompt();
  }
}

void main();
