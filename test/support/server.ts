import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTied } from './children.js';
import { freePort } from './ports.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RunningServer {
  tcpPort: number;
  httpPort: number;
  http: string;
  metricsPort: number;
  /** The metrics listener (loopback, apart from the public ports): `${metrics}/metrics`. */
  metrics: string;
  process: ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM, and wait for the process to exit (SIGKILL after 10 s). */
  stop(): Promise<number | null>;
  /** SIGKILL, and wait for the process to exit. */
  kill(): Promise<void>;
}

/**
 * Starts the real server (`entries/node.ts`) on free loopback ports and
 * waits for its start-up banner. `args` are extra arguments (positional
 * block_duration/timeout come after the port: pass them as `positional`).
 */
export async function startServer(
  options: {
    positional?: string[];
    args?: string[];
    env?: NodeJS.ProcessEnv;
    tcpPort?: number;
    httpPort?: number;
    metricsPort?: number;
    /** The address to listen on; null: no --host, the server's own default. */
    host?: string | null;
  } = {},
): Promise<RunningServer> {
  const tcpPort = options.tcpPort ?? (await freePort());
  const httpPort = options.httpPort ?? (await freePort());
  // A port of the test's own: the default (9464) would be shared by every server of the run.
  const metricsPort = options.metricsPort ?? (await freePort());
  // node itself with tsx as a loader, not the tsx wrapper: the PID we signal
  // is then the server's own, so SIGKILL really kills the server.
  const child = spawnTied(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'entries', 'node.ts'),
      String(tcpPort),
      ...(options.positional ?? []),
      '--http-port',
      String(httpPort),
      '--metrics-port',
      String(metricsPort),
      ...(options.host === null ? [] : ['--host', options.host ?? '127.0.0.1']),
      '--credentials',
      join(root, 'credentials.txt'),
      ...(options.args ?? []),
    ],
    // Cheap password hashes (a test does not measure scrypt) unless the test says otherwise.
    { cwd: root, env: { ...process.env, IM_PASSWORD_COST: '1024', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    resolve(code);
  }));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    const check = () => {
      if (output.includes('Messaging server listening')) {
        clearTimeout(deadline);
        resolve();
      }
    };
    // The start-up lines are log entries: on stderr.
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', () => {
      clearTimeout(deadline);
      reject(new Error(`server exited during start-up:\n${output}`));
    });
  });
  return {
    tcpPort,
    httpPort,
    http: `http://127.0.0.1:${httpPort}`,
    metricsPort,
    metrics: `http://127.0.0.1:${metricsPort}`,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
