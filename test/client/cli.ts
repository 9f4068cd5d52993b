import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { root } from '../support/server.js';

/**
 * One real client process (`node --import tsx client/main.ts 127.0.0.1 <port>`), driven as
 * a user would: lines typed into stdin, what it prints read from stdout.
 */
export class Cli {
  private out = '';
  private err = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.out += chunk;
      this.notify();
    });
    child.stderr!.on('data', (chunk: string) => (this.err += chunk));
    // A client that exits stops reading: typing into it must not crash the test.
    child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        running.delete(this);
        this.notify();
        resolve(code);
      }),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything printed on stdout so far. */
  output(): string {
    return this.out;
  }

  /** Everything printed on stderr so far. */
  errors(): string {
    return this.err;
  }

  /** The complete lines printed so far. */
  lines(): string[] {
    return this.out.split('\n').slice(0, -1);
  }

  /** How many printed lines are exactly `line`. */
  count(line: string): number {
    return this.lines().filter((l) => l === line).length;
  }

  type(line: string): void {
    this.child.stdin!.write(line + '\n');
  }

  /** Ctrl-D: the end of the user's input. */
  endInput(): void {
    this.child.stdin!.end();
  }

  /** Waits until `line` has been printed, as a whole line, at least `times` times. */
  waitForLine(line: string, times = 1, timeoutMs = 15_000): Promise<void> {
    return this.waitUntil(() => this.count(line) >= times, `the line ${JSON.stringify(line)} x${times}`, timeoutMs);
  }

  /** Waits until stdout contains `text` at least `times` times (prompts end without a newline). */
  waitForText(text: string, times = 1, timeoutMs = 15_000): Promise<void> {
    return this.waitUntil(() => this.out.split(text).length - 1 >= times, `the text ${JSON.stringify(text)} x${times}`, timeoutMs);
  }

  /** Waits for the process to exit by itself; resolves with its exit code. */
  async waitForExit(timeoutMs = 15_000): Promise<number | null> {
    await this.waitUntil(() => !this.running, 'the process to exit', timeoutMs, true);
    return this.exited;
  }

  /** Stops the process by its PID (SIGTERM: the client logs out), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  private waitUntil(done: () => boolean, what: string, timeoutMs: number, exitIsFine = false): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          resolve();
          return;
        }
        if (!exitIsFine && !this.running) {
          clearTimeout(timer);
          reject(new Error(`${this.name}: exited (${this.child.exitCode}) while waiting for ${what}\n${this.describe()}`));
          return;
        }
        this.waiters.push(check);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`${this.name}: timed out waiting for ${what}\n${this.describe()}`));
      }, timeoutMs);
      check();
    });
  }

  private describe(): string {
    return `--- stdout ---\n${this.out}\n--- stderr ---\n${this.err}`;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

const running = new Set<Cli>();

/**
 * Starts a client against the server's TCP port: node itself with tsx as a
 * loader, not the tsx wrapper, so the PID signalled is the client's own. The
 * wrapper passes a signal on and kills its child outright when the child
 * has not said within 30 ms that it got it, which a busy machine misses:
 * the client then never logs out.
 */
export function startCli(name: string, port: number, args: string[] = ['127.0.0.1', String(port)]): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'client', 'main.ts'), ...args], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const cli = new Cli(name, child);
  running.add(cli);
  return cli;
}

/** Starts a client and logs in through its prompts. */
export async function loginCli(port: number, user: string, password: string): Promise<Cli> {
  const cli = startCli(user, port);
  await cli.waitForText('Username: ');
  cli.type(user);
  await cli.waitForText('Password: ');
  cli.type(password);
  await cli.waitForLine('Welcome to the greatest messaging application ever!');
  return cli;
}

/** Stops every client still running (each by its own PID). */
export async function stopClients(): Promise<void> {
  await Promise.all([...running].map((cli) => cli.stop()));
}
