import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

/** Programs the tests started and have not seen exit yet. */
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Spawns a program a test needs (a Redis, a proxy, a server) tied to the
 * test process: through `setpriv --pdeathsig` the kernel kills it if the test
 * process dies however it dies, and an exit hook kills by PID whatever is
 * still running when it exits normally. setpriv execs the program, so the
 * PID is the program's own and the tests can signal it.
 */
export function spawnTied(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const tied = process.platform === 'linux' && existsSync(SETPRIV);
  const child = tied ? spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', '--', command, ...args], options) : spawn(command, args, options);
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  child.once('error', () => alive.delete(child));
  return child;
}

/** A tied program with the tail of what it printed and a promise of its exit. */
export interface TiedProgram {
  child: ChildProcess;
  /** Settles when the program exits or cannot be started. */
  exited: Promise<void>;
  /** The last `keepChars` characters it wrote to stdout and stderr (and a spawn error). */
  output(): string;
}

/** spawnTied, keeping the tail of the program's output for error messages. */
export function startTied(command: string, args: string[], options: SpawnOptions = {}, keepChars = 8000): TiedProgram {
  const child = spawnTied(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-keepChars));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      output += `\n${String(err)}`;
      resolve();
    });
    child.once('exit', () => resolve());
  });
  return { child, exited, output: () => output };
}
