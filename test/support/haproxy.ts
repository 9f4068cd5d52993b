import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTied } from './children.js';
import { freePort } from './ports.js';
import { root } from './server.js';

/** The operator's configuration itself, not a copy: the tests fill in its variables. */
export const haproxyConfig = join(root, 'deploy', 'haproxy.cfg');

const HAPROXY = process.env.HAPROXY ?? '/usr/sbin/haproxy';

export interface Backend {
  tcpPort: number;
  httpPort: number;
}

/** One row of `show stat`: a frontend, a backend or one of its servers. */
export interface ProxyStat {
  proxy: string;
  server: string;
  /** UP, DOWN, MAINT, DRAIN, `UP 1/2` (going down), ... */
  status: string;
  checkStatus: string;
}

export interface RunningHaproxy {
  /** The TLS frontends, on 127.0.0.1. */
  tcpPort: number;
  httpPort: number;
  pid: number;
  output(): string;
  /** One command on the admin socket; its answer. */
  admin(command: string): Promise<string>;
  stats(): Promise<ProxyStat[]>;
  /** Waits until `done` holds for the server rows of `show stat`. */
  waitForStats(done: (rows: ProxyStat[]) => boolean, what: string, timeoutMs?: number): Promise<ProxyStat[]>;
  /** SIGTERM by PID (SIGKILL after a grace period); waits for the exit. */
  stop(): Promise<void>;
}


/**
 * Starts HAProxy with deploy/haproxy.cfg in the foreground (`-db`, so the PID
 * is HAProxy's own and it stops with this process), on free loopback ports,
 * in front of three replicas. Resolves once every replica has passed a
 * health check.
 */
export async function startHaproxy(options: { replicas: Backend[]; certificate: string }): Promise<RunningHaproxy> {
  if (options.replicas.length !== 3) throw new Error('deploy/haproxy.cfg names three replicas');
  let lastError: unknown;
  // A port found free may be taken before HAProxy binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(options.replicas, options.certificate);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function launch(replicas: Backend[], certificate: string): Promise<RunningHaproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'im-haproxy-'));
  const socket = join(dir, 'admin.sock');
  const tcpPort = await freePort();
  const httpPort = await freePort();
  const env: Record<string, string> = {
    IM_LB_TCP_BIND: `127.0.0.1:${tcpPort}`,
    IM_LB_HTTP_BIND: `127.0.0.1:${httpPort}`,
    IM_LB_CERT: certificate,
    IM_LB_ADMIN_SOCKET: socket,
  };
  replicas.forEach((r, k) => {
    env[`IM_REPLICA${k + 1}_TCP`] = `127.0.0.1:${r.tcpPort}`;
    env[`IM_REPLICA${k + 1}_HTTP`] = `127.0.0.1:${r.httpPort}`;
  });
  const args = ['-db', '-f', haproxyConfig];
  const { child, exited, output: printed } = startTied(HAPROXY, args, { cwd: dir, env: { ...process.env, ...env } }, 20_000);
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  const admin = (command: string) => adminCommand(socket, command);
  const stats = async () => parseStats(await admin('show stat'));
  const stop = async () => {
    if (!gone()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const waitForStats = async (done: (rows: ProxyStat[]) => boolean, what: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    let rows: ProxyStat[] = [];
    for (;;) {
      if (gone()) throw new Error(`haproxy exited while waiting for ${what}:\n${printed()}`);
      rows = await stats().catch(() => []);
      if (rows.length && done(rows.filter((r) => r.server !== 'FRONTEND' && r.server !== 'BACKEND'))) return rows;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(rows)}\n${printed()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  try {
    // Up, and every replica checked (not merely assumed up at start).
    await waitForStats(
      (rows) => rows.length === 6 && rows.every((r) => r.status === 'UP' && (r.proxy !== 'im_http' || r.checkStatus === 'L7OK')),
      'every replica to pass its health check',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { tcpPort, httpPort, pid: child.pid!, output: printed, admin, stats, waitForStats, stop };
}

function adminCommand(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(command + '\n'));
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error(`admin socket: no answer to ${command}`)));
  });
}

function parseStats(csv: string): ProxyStat[] {
  const [header, ...rows] = csv.trim().split('\n');
  if (!header?.startsWith('# ')) return [];
  const names = header.slice(2).split(',');
  const column = (name: string) => names.indexOf(name);
  return rows.map((row) => {
    const cells = row.split(',');
    return {
      proxy: cells[column('pxname')],
      server: cells[column('svname')],
      status: cells[column('status')],
      checkStatus: cells[column('check_status')],
    };
  });
}
