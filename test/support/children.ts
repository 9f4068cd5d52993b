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
