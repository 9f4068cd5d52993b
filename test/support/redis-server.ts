import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTied } from './children.js';
import { freePort } from './ports.js';

/**
 * A real `redis-server` for tests, on a free loopback port, owned by this
 * test process: started as a child (no daemonize), stopped by its PID, never
 * by name.
 *
 * A crashed test cannot leave it behind: on Linux the child is started
 * through `setpriv --pdeathsig SIGKILL` (which then execs redis-server, so
 * the PID is still redis-server's own), so the kernel kills it when this
 * process dies, however it dies; and an `exit` hook kills every server still
 * running when the process exits normally.
 */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The data directory (a temp dir, removed by stop() unless it was given). */
  dir: string;
  /** The current server's PID. */
  pid(): number;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops the server but keeps its port and data for restart() (an outage). */
  halt(): Promise<void>;
  /**
   * Stops the server cleanly and starts it again on the same port with the
   * same data directory. Only a persistent server (`persistent: true` or a
   * given `dir`) keeps its data across a restart.
   */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /**
   * Data directory for persistence tests. Given (or with `persistent`), the
   * server writes an append-only file (fsync always) and RDB snapshots there,
   * so its data survives restart(). Otherwise nothing is saved.
   */
  dir?: string;
  /** Persist into a fresh temp dir (removed by stop()). */
  persistent?: boolean;
  /** How long to wait for PING to answer (ms). */
  readyTimeoutMs?: number;
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

/**
 * One look over a raw socket: PING answered `+PONG` (not `-LOADING`, not a
 * refusal), and the PID the server reports (INFO server), so a server found
 * on the port is known to be the one this helper started.
 */
function probe(port: number, timeoutMs = 1000): Promise<{ pong: boolean; pid: number | null }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    let settled = false;
    const done = (pong: boolean, pid: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ pong, pid });
    };
    const timer = setTimeout(() => done(false, null), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\nINFO server\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      const firstEnd = reply.indexOf('\r\n');
      if (firstEnd < 0) return;
      const pong = reply.startsWith('+PONG');
      const rest = reply.slice(firstEnd + 2);
      const header = /^\$(\d+)\r\n/.exec(rest);
      if (rest.startsWith('-')) return done(pong, null);
      if (!header || rest.length < header[0].length + Number(header[1])) return;
      const pid = /process_id:(\d+)/.exec(rest);
      done(pong, pid ? Number(pid[1]) : null);
    });
    socket.on('error', () => done(false, null));
    socket.on('close', () => done(false, null));
  });
}

function serverArgs(port: number, dir: string, persistent: boolean): string[] {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--daemonize', 'no',
    '--dir', dir,
    '--logfile', '',
  ];
  if (persistent) {
    args.push('--save', '1 1', '--appendonly', 'yes', '--appendfsync', 'always');
  } else {
    args.push('--save', '', '--appendonly', 'no');
  }
  return args;
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  log: () => string;
}

/** Spawns one redis-server and waits until it answers PING. */
async function launch(port: number, dir: string, persistent: boolean, readyTimeoutMs: number): Promise<Running> {
  const child = spawnTied(REDIS_SERVER, serverArgs(port, dir, persistent), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let hasExited = false;
  let spawnError: Error | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      hasExited = true;
      resolve();
    });
    child.once('exit', () => {
      hasExited = true;
      resolve();
    });
  });

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (hasExited) {
      throw new Error(`redis-server on port ${port} exited before answering PING${spawnError ? `: ${String(spawnError)}` : ''}\n${output}`);
    }
    const seen = await probe(port);
    if (seen.pong && seen.pid === child.pid) break;
    if (Date.now() > deadline) {
      await kill(child, exited);
      throw new Error(`redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, exited, log: () => output };
}

/** Stops one child by its PID: SIGTERM, SIGKILL after a grace period; waits for exit. */
async function kill(child: ChildProcess, exited: Promise<void>, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    await exited;
    return;
  }
  const pid = child.pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  const forced = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      resolve();
    }, graceMs);
  });
  await Promise.race([exited, forced]);
  clearTimeout(timer);
  await exited;
}

/** Starts a redis-server on a free loopback port. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const persistent = options.persistent === true || options.dir !== undefined;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'im-redis-'));
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;

  const port = await freePort();
  let current: Running;
  try {
    current = await launch(port, dir, persistent, readyTimeoutMs);
  } catch (error) {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  let server: Running | null = current;
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: () => server?.child.pid ?? -1,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (server) await kill(server.child, server.exited);
      server = null;
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
    async halt() {
      if (stopped) throw new Error('redis-server was stopped');
      if (server) await kill(server.child, server.exited, 15_000);
      server = null;
    },
    async restart() {
      if (stopped) throw new Error('redis-server was stopped');
      if (server) await kill(server.child, server.exited, 15_000);
      server = null;
      server = await launch(port, dir, persistent, readyTimeoutMs);
    },
  };
}
