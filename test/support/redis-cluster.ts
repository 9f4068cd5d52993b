import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startTied } from './children.js';
import { freePort } from './ports.js';

/**
 * A three-node Redis Cluster for tests (ARCHITECTURE.md, Tests): three
 * `redis-server --cluster-enabled yes` on free loopback ports, each with a
 * temp dir of its own, joined by `redis-cli --cluster create` with no
 * replicas, so each node is a master holding a third of the slots.
 *
 * Every server is a child of this test process, stopped by its PID, never by
 * name; started through `setpriv --pdeathsig SIGKILL` on Linux (as
 * test/support/redis-server.ts does), so a crashed test cannot leave one
 * behind, and an `exit` hook kills any still running.
 */
export interface RedisCluster {
  /** The seed list of SPEC section 7: `redis://127.0.0.1:<port>,...`, one URL per node. */
  url: string;
  ports: number[];
  /** The servers' PIDs, in the order of `ports`. */
  pids(): number[];
  /** One plain client per node (every node is a master), for FLUSHALL, CLIENT KILL, INFO. */
  nodes: Redis[];
  /** Which node (an index into `ports`) serves the slot of a key or shard channel. */
  nodeOf(key: string): Promise<number>;
  /** Empties the cluster: FLUSHALL on every master. */
  flush(): Promise<void>;
  /** Stops every server (SIGTERM, SIGKILL after a grace period) and removes the temp dirs. */
  stop(): Promise<void>;
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
const REDIS_CLI = process.env.REDIS_CLI ?? '/usr/bin/redis-cli';

interface Node {
  port: number;
  dir: string;
  child: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

function spawnNode(port: number, busPort: number, dir: string): Node {
  // `cluster-port` (Redis 7) names the bus port: the default, port + 10000,
  // may be taken or beyond 65535 for an ephemeral port.
  const args = [
    '--port', String(port),
    '--cluster-port', String(busPort),
    '--bind', '127.0.0.1',
    '--daemonize', 'no',
    '--dir', dir,
    '--logfile', '',
    '--save', '',
    '--appendonly', 'no',
    '--cluster-enabled', 'yes',
    '--cluster-config-file', join(dir, 'nodes.conf'),
    '--cluster-node-timeout', '5000',
  ];
  const { child, exited, output } = startTied(REDIS_SERVER, args);
  return { port, dir, child, exited, output };
}

const gone = (node: Node) => node.child.exitCode !== null || node.child.signalCode !== null || node.child.pid === undefined;

async function stopNode(node: Node, graceMs = 5000): Promise<void> {
  if (!gone(node)) {
    const pid = node.child.pid!;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, graceMs);
    await node.exited;
    clearTimeout(timer);
  }
  rmSync(node.dir, { recursive: true, force: true });
}

async function waitFor(done: () => Promise<boolean>, what: string, nodes: Node[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = nodes.find(gone);
    if (dead) throw new Error(`redis-server on port ${dead.port} exited while waiting for ${what}:\n${dead.output()}`);
    if (await done().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}:\n${nodes.map((n) => `--- ${n.port}\n${n.output()}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function cli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function launch(size: number, timeoutMs: number): Promise<RedisCluster> {
  const nodes: Node[] = [];
  const clients: Redis[] = [];
  const stop = async () => {
    for (const client of clients) client.disconnect();
    await Promise.all(nodes.map((node) => stopNode(node)));
  };
  try {
    for (let k = 0; k < size; k++) {
      const [port, busPort] = [await freePort(), await freePort()];
      nodes.push(spawnNode(port, busPort, mkdtempSync(join(tmpdir(), 'im-redis-cluster-'))));
    }
    for (const node of nodes) {
      clients.push(new Redis({ host: '127.0.0.1', port: node.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 }));
    }
    for (const client of clients) client.on('error', () => undefined);
    // Each port answers, and by the server this helper started (not one that
    // happened to be there).
    await waitFor(
      async () => {
        const infos = await Promise.all(clients.map((c) => c.info('server')));
        return infos.every((info, k) => new RegExp(`^process_id:${nodes[k].child.pid}\\r?$`, 'm').test(info));
      },
      'every node to answer',
      nodes,
      timeoutMs,
    );
    await cli(['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], timeoutMs);
    // `--cluster create` returns once the nodes agree on the configuration;
    // each node says ok only once it sees every slot served.
    await waitFor(
      async () => {
        const infos = await Promise.all(clients.map((c) => c.cluster('INFO') as Promise<string>));
        return infos.every(
          (info) => /^cluster_state:ok\r?$/m.test(info) && /^cluster_slots_ok:16384\r?$/m.test(info) && new RegExp(`^cluster_known_nodes:${size}\\r?$`, 'm').test(info),
        );
      },
      'cluster_state:ok on every node',
      nodes,
      timeoutMs,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  let stopped = false;
  return {
    url: nodes.map((n) => `redis://127.0.0.1:${n.port}`).join(','),
    ports: nodes.map((n) => n.port),
    pids: () => nodes.map((n) => n.child.pid ?? -1),
    nodes: clients,
    async nodeOf(key: string) {
      const slot = Number(await clients[0].cluster('KEYSLOT', key));
      const ranges = await clients[0].cluster('SLOTS');
      const range = ranges.find(([first, last]) => first <= slot && slot <= last);
      if (!range) throw new Error(`no node serves slot ${slot}`);
      return nodes.findIndex((n) => n.port === Number(range[2][1]));
    },
    async flush() {
      await Promise.all(clients.map((c) => c.flushall()));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stop();
    },
  };
}

/** Starts a three-node Redis Cluster on free loopback ports and waits until every node says cluster_state:ok. */
export async function startRedisCluster(options: { timeoutMs?: number } = {}): Promise<RedisCluster> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  let lastError: unknown;
  // A port found free may be taken before its server binds it: try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(3, timeoutMs);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
