import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, cpSync, existsSync, mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, createServer } from 'node:net';
import { join, relative } from 'node:path';
import { progress } from './progress.js';

/**
 * Every process the bench starts: redis-server, the server under test, its
 * own driver processes. Each is stopped by its PID (SIGTERM, then SIGKILL
 * after a grace period), never by name. On Linux each is started through
 * `setpriv --pdeathsig SIGKILL` (which execs the program, so the PID stays
 * the program's own): if the runner dies, the kernel ends them too.
 */
export interface Child {
  name: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<void>;
  output(): string;
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Child>();
const SETPRIV = '/usr/bin/setpriv';

process.once('exit', () => {
  for (const c of running) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function track(name: string, child: ChildProcess): Child {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const entry: Child = {
    name,
    pid: child.pid,
    child,
    exited,
    output: () => output,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(entry.pid, 'SIGTERM');
        } catch {
          // already gone
        }
        let timer: NodeJS.Timeout | undefined;
        const forced = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            try {
              process.kill(entry.pid, 'SIGKILL');
            } catch {
              // already gone
            }
            resolve();
          }, graceMs);
        });
        await Promise.race([exited, forced]);
        clearTimeout(timer);
      }
      await exited;
      running.delete(entry);
    },
  };
  running.add(entry);
  void exited.then(() => running.delete(entry));
  return entry;
}

/** Starts a program that dies with the runner. */
export function start(name: string, command: string, args: string[], cwd: string, env: Record<string, string> = {}): Child {
  const useSetpriv = process.platform === 'linux' && existsSync(SETPRIV);
  const options = { cwd, stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[], env: { ...process.env, ...env } };
  const child = useSetpriv ? spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', '--', command, ...args], options) : spawn(command, args, options);
  return track(name, child);
}

/** Stops every process still running, in reverse order of start. */
export async function stopAll(): Promise<void> {
  for (const c of [...running].reverse()) await c.stop();
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => done(chunk.toString('latin1').startsWith('+PONG')));
    socket.on('error', () => done(false));
  });
}

async function waitFor(what: string, child: Child, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.child.exitCode !== null || child.child.signalCode !== null) {
      throw new Error(`${what} exited before it was ready:\n${child.output()}`);
    }
    if (await check()) return;
    if (Date.now() > deadline) {
      await child.stop();
      throw new Error(`${what} not ready within ${timeoutMs} ms:\n${child.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RedisProcess extends Child {
  port: number;
  url: string;
}

/** A fresh redis-server on a free loopback port, nothing saved to disk. */
export async function startRedis(dir: string): Promise<RedisProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = start('redis-server', process.env.REDIS_SERVER ?? 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'no', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--logfile', '', '--maxclients', '20000',
    ], dir);
    try {
      await waitFor(`redis-server on port ${port}`, child, () => redisPing(port), 15_000);
      return Object.assign(child, { port, url: `redis://127.0.0.1:${port}` });
    } catch (err) {
      lastError = err;
      await child.stop();
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

export interface ServerProcess extends Child {
  tcpPort: number;
  httpPort: number;
  args: string[];
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The version a node binary reports (`v24.1.0`), or why it is not a node the
 * server can run on: a runtime comparison is worthless if the binary is not
 * the one the results name, so this is checked before anything is built.
 */
export function nodeVersion(path: string): string {
  if (!existsSync(path)) throw new Error('no such file');
  if (!statSync(path).isFile()) throw new Error('not a file');
  if (!executable(path)) throw new Error('not executable');
  let printed: string;
  try {
    printed = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (err) {
    throw new Error(`\`${path} --version\` failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (!/^v\d+\.\d+\.\d+/.test(printed)) throw new Error(`\`--version\` printed ${JSON.stringify(printed.split('\n')[0].slice(0, 80))}, not a Node version`);
  return printed;
}

/**
 * The built server as an operator runs it: `node dist/entries/node.js`
 * (package.json's `bin.server`) from the server checkout, on the given node binary (the runtime under
 * comparison), limits that would throttle a benchmark off, a long inactivity
 * timeout so nobody is logged out mid-run.
 */
export async function startServer(root: string, node: string, redisUrl: string, credentials: string, timeoutSeconds: number, profileDir = ''): Promise<ServerProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const tcpPort = await freePort();
    const httpPort = await freePort();
    const args = [
      ...serverNodeFlags(root),
      ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
      serverEntry(root),
      String(tcpPort), '60', String(timeoutSeconds),
      '--host', '127.0.0.1', '--http-port', String(httpPort), '--redis', redisUrl, '--credentials', credentials,
      '--command-rate', '0', '--login-rate', '0', '--byte-rate', '0',
    ];
    const child = start('server', node, args, root, benchServerEnv);
    try {
      await waitFor(`server on ports ${tcpPort}/${httpPort}`, child, async () => child.output().includes('listening on TCP') && (await healthy(httpPort)), 30_000);
      return Object.assign(child, { tcpPort, httpPort, args: [node, ...args] });
    } catch (err) {
      lastError = err;
      await child.stop();
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/**
 * The built server's entry in a checkout, as its package.json names it
 * (`bin.server`): a baseline checkout from before a file moved still runs.
 */
export function serverEntry(root: string): string {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin?: { server?: string } };
  return pkg.bin?.server ?? join('dist', 'entries', 'node.js');
}

/**
 * The V8 flags the checkout's production start passes to node
 * (package.json `config.nodeFlags`, as `npm start` and deploy/ use them):
 * each checkout is measured as it would run.
 */
export function serverNodeFlags(root: string): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { config?: { nodeFlags?: string } };
  return (pkg.config?.nodeFlags ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Limits a benchmark must not hit, given by environment so that a baseline
 * checkout from before the flags existed still starts (it ignores them):
 * every driver connection comes from loopback, and a capacity ramp holds
 * connections before they log in. No metrics listener either: nothing here
 * scrapes it, and a run must not depend on its port (9464) being free. The
 * users' cheap hashes (bench/runner/users.ts) stay as seeded: a login must
 * not remake them at the server's cost, or scenario 3 measures scrypt.
 */
const benchServerEnv = { IM_MAX_CONNECTIONS: '0', IM_MAX_CONNECTIONS_PER_ADDRESS: '0', IM_LOGIN_TIMEOUT: '0', IM_METRICS_PORT: '0', IM_REHASH_PASSWORDS: 'no' };

/** Paths in a checkout that are not sources: never copied into a snapshot. */
const NOT_SOURCES = ['node_modules', '.git', 'dist', join('bench', 'results')];

/**
 * Copies the checkout's sources (as they are on disk, committed or not) to a
 * temporary directory, links its node_modules, and runs `npm run build`
 * there, as an operator would. The server then runs from the snapshot: other
 * people editing or rebuilding the checkout meanwhile cannot change what is
 * measured, and the checkout's own dist/ is left alone.
 */
export async function buildSnapshot(root: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'im-bench-server-'));
  cpSync(root, dir, { recursive: true, filter: (source) => !NOT_SOURCES.includes(relative(root, source)) });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  progress(`building a snapshot of ${root} in ${dir} (npm run build)`);
  const child = start('npm run build', 'npm', ['run', 'build'], dir);
  await child.exited;
  if (child.child.exitCode !== 0) throw new Error(`npm run build failed in a snapshot of ${root}:\n${child.output()}`);
  if (!existsSync(join(dir, serverEntry(dir)))) throw new Error(`npm run build in a snapshot of ${root} made no ${serverEntry(dir)}`);
  return dir;
}

export interface ProcSample {
  rssBytes: number;
  /** CPU time used so far (user + system), ms. */
  cpuMs: number;
  at: number;
}

const TICK_MS = 10; // Linux USER_HZ is 100 on every architecture Node supports.

/** RSS and CPU time of a process, from /proc. */
export function sample(pid: number): ProcSample {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = Number(fields[11]) + Number(fields[12]);
    return { rssBytes: rss ? Number(rss[1]) * 1024 : 0, cpuMs: cpuTicks * TICK_MS, at: performance.now() };
  } catch {
    return { rssBytes: 0, cpuMs: 0, at: performance.now() };
  }
}

/** CPU time used by the whole machine so far (every process; from /proc/stat). */
export function machineSample(): ProcSample {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return { rssBytes: 0, cpuMs: (user + nice + system + irq + softirq + steal) * TICK_MS, at: performance.now() };
  } catch {
    return { rssBytes: 0, cpuMs: 0, at: performance.now() };
  }
}

/** CPU share between two samples: 1.0 = one full core. */
export function cpuShare(a: ProcSample, b: ProcSample): number {
  const wall = b.at - a.at;
  return wall > 0 ? (b.cpuMs - a.cpuMs) / wall : 0;
}
