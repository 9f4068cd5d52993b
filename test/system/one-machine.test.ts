import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { root } from '../support/server.js';
import { https as httpsRequest, type HttpsAnswer } from '../support/tls-clients.js';

/*
 * The one-machine recipe of deploy/README.md as an operator runs it:
 * deploy/one-machine.sh start in a run directory of its own (a temp dir
 * here, every port from freePort() through the script's variables), the
 * README's curl walkthrough over HTTPS through its HAProxy trusting the CA
 * it made, and deploy/one-machine.sh stop, after which none of the processes
 * it recorded may be left. The cases run in order on the one deployment.
 */
const script = join(root, 'deploy', 'one-machine.sh');
const names = ['redis', 'replica-1', 'replica-2', 'replica-3', 'haproxy'];

let run: string;
let env: NodeJS.ProcessEnv;
let httpsPort: number;
let replicaHttpPorts: number[];
let replicaMetricsPorts: number[];
let redisPort: number;
/** Every process a start recorded (PID and /proc start time), for the last-resort kill. */
const recorded: { name: string; pid: number; start: string }[] = [];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** deploy/one-machine.sh with the test's environment; never rejects. */
function recipe(args: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    execFile('bash', [script, ...args], { cwd: run, env, timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr: stderr + (err && code === null ? `\n${String(err)}` : '') });
    });
  });
}

/** The processes the script has recorded in the run directory's pids/. */
function recordedNow(): { name: string; pid: number; start: string }[] {
  const dir = join(run, 'pids');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.pid'))
    .map((file) => {
      const name = file.slice(0, -'.pid'.length);
      const start = existsSync(join(dir, `${name}.start`)) ? readFileSync(join(dir, `${name}.start`), 'utf8').trim() : '';
      return { name, pid: Number(readFileSync(join(dir, file), 'utf8').trim()), start };
    });
}

/**
 * The process with this PID, started at this time, has not exited. A zombie
 * has: the script's processes outlive it, so their parent is init, which
 * may take a moment to reap them.
 */
function alive(pid: number, start: string): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] !== 'Z' && fields[19] === start;
}

/** Whatever a failed stop left: SIGKILL by the recorded PID, only if it is still that process. */
function killLeftovers(): void {
  for (const { pid, start } of recorded) {
    if (!alive(pid, start)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}
process.once('exit', killLeftovers);

/** One request to HAProxy's HTTPS frontend, trusting only the run directory's CA (curl --cacert); a string body is a form, as curl -d sends it. */
function https(
  method: 'GET' | 'POST',
  path: string,
  options: { body?: string; type?: string; token?: string; servername?: string } = {},
): Promise<HttpsAnswer> {
  const target = { port: httpsPort, ca: readFileSync(join(run, 'ca.pem'), 'utf8') };
  return httpsRequest(target, method, path, { type: 'application/x-www-form-urlencoded', timeoutMs: 45_000, ...options });
}

const texts = (answer: HttpsAnswer) => (answer.body.events as { text: string }[]).map((e) => e.text);

async function login(username: string, password: string): Promise<string> {
  const answer = await https('POST', '/login', { body: `username=${username}&password=${password}` });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return String(answer.body.token);
}

/** Start, checked as the first case checks it, for the cases that start again. */
async function start(): Promise<Ran> {
  const ran = await recipe(['start', run], 240_000);
  recorded.push(...recordedNow());
  return ran;
}

beforeAll(async () => {
  run = mkdtempSync(join(tmpdir(), 'im-one-machine-'));
  httpsPort = await freePort();
  const tlsPort = await freePort();
  const replicaTcpPorts = [await freePort(), await freePort(), await freePort()];
  replicaHttpPorts = [await freePort(), await freePort(), await freePort()];
  replicaMetricsPorts = [await freePort(), await freePort(), await freePort()];
  redisPort = await freePort();
  env = {
    ...process.env,
    IM_LB_HTTPS_PORT: String(httpsPort),
    IM_LB_TLS_PORT: String(tlsPort),
    IM_REPLICA_TCP_PORTS: replicaTcpPorts.join(' '),
    IM_REPLICA_HTTP_PORTS: replicaHttpPorts.join(' '),
    IM_REPLICA_METRICS_PORTS: replicaMetricsPorts.join(' '),
    IM_REDIS_PORT: String(redisPort),
    // A loaded machine (and a first `npm run build`) can be slow.
    IM_START_TIMEOUT: '120',
  };
});

afterAll(async () => {
  try {
    if (run) await recipe(['stop', run], 120_000);
  } finally {
    killLeftovers();
    if (run) rmSync(run, { recursive: true, force: true });
  }
}, 150_000);

describe('deploy/one-machine.sh: Redis, three replicas and HAProxy on one machine', () => {
  let started: Ran | undefined;
  /** yoda's session, from the walkthrough. */
  let T = '';
  const requireStarted = () => expect(started?.code, `start failed:\n${started?.stdout}\n${started?.stderr}`).toBe(0);

  it('start: starts every process, records its PID in the run directory and prints the walkthrough', async () => {
    started = await start();
    requireStarted();
    const out = started.stdout;
    const now = recordedNow();
    expect(now.map((r) => r.name).sort()).toEqual([...names].sort());
    for (const { name, pid, start } of now) {
      expect(alive(pid, start), `${name} (PID ${pid}) running`).toBe(true);
      expect(out).toMatch(new RegExp(`${name} +PID ${pid} `));
    }
    // The replicas run the built server, started as the systemd unit starts it.
    for (const { name, pid } of now.filter((r) => r.name.startsWith('replica-'))) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      // node, the V8 flags npm start passes (package.json config.nodeFlags), the built entry.
      const flags = String(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).config.nodeFlags).split(' ');
      expect(argv.slice(1, flags.length + 2), name).toEqual([...flags, join(root, 'dist', 'entries', 'node.js')]);
    }
    expect(out).toContain(`LB=https://127.0.0.1:${httpsPort} CA=${join(run, 'ca.pem')}`);
    expect(out).toContain(`T=$(curl -s --cacert "$CA" $LB/login -d '{"username":"yoda","password":"wise"}'`);
    expect(out).toContain(`stop ${run}`);
    // deploy/README.md shows the same commands (for the default run directory).
    const walkthrough = out.slice(out.indexOf('    T=$(curl'), out.lastIndexOf('    # yoda\n') + '    # yoda\n'.length);
    expect(walkthrough.split('\n').length).toBe(8);
    expect(readFileSync(join(root, 'deploy', 'README.md'), 'utf8')).toContain(walkthrough);
  }, 300_000);

  it('npm start runs the same built server with plain node (start built it if it was stale)', async () => {
    requireStarted();
    const started = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(process.execPath, [join(root, 'scripts', 'start.mjs'), '--help'], { cwd: root }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    expect(started.out).toContain('Usage: npm start -- [port] [block_duration] [timeout] [options]');
    expect(started.out).not.toContain('npm run build');
    expect(started.code).toBe(0);
  }, 60_000);

  it("the README's walkthrough over HTTPS, trusting the run directory's CA", async () => {
    requireStarted();
    const yoda = await https('POST', '/login', { body: JSON.stringify({ username: 'yoda', password: 'wise' }), type: 'application/json' });
    expect(yoda.status, JSON.stringify(yoda.body)).toBe(200);
    T = String(yoda.body.token);
    const sent = await https('POST', '/command', { body: 'message luke Hey Dude', token: T });
    expect([sent.status, sent.body.ok]).toEqual([200, true]);

    const L = await login('luke', 'sunrise');
    const events = await https('GET', '/events?wait=30', { token: L });
    expect(events.status).toBe(200);
    expect(texts(events)).toContain('yoda: Hey Dude');
    const whoelse = await https('POST', '/command', { body: 'whoelse', token: L });
    expect(whoelse.body.text).toBe('yoda');
  });

  it('the certificate names localhost as well as 127.0.0.1', async () => {
    requireStarted();
    const answer = await https('GET', '/healthz', { servername: 'localhost' });
    expect(answer.status).toBe(200);
  });

  it('the three replicas answer, each on its own port and in HAProxy (status)', async () => {
    requireStarted();
    for (const port of replicaHttpPorts) {
      const answer = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(answer.status, `replica on ${port}`).toBe(200);
    }
    const status = await recipe(['status', run], 30_000);
    expect(status.code, status.stderr).toBe(0);
    for (const backend of ['im_http', 'im_tcp']) {
      for (const server of ['r1', 'r2', 'r3']) expect(status.stdout).toContain(`${backend}/${server} UP`);
    }
  });

  it('each replica serves its metrics on its own loopback port, and HAProxy does not pass /metrics on', async () => {
    requireStarted();
    for (const port of replicaMetricsPorts) {
      const answer = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(answer.status, `metrics of the replica on ${port}`).toBe(200);
      expect(await answer.text()).toMatch(/^# TYPE im_commands_total counter$/m);
    }
    for (const port of replicaHttpPorts) expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status, `HTTP port ${port}`).toBe(404);
    expect(await https('GET', '/metrics')).toMatchObject({ status: 404, body: { error: 'not_found' } });
  });

  it('Redis keeps an append-only file and never evicts (deploy/README.md, Redis)', async () => {
    requireStarted();
    const redis = new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(await redis.config('GET', 'dir')).toEqual(['dir', join(run, 'redis')]);
    } finally {
      redis.disconnect();
    }
    // Stored for leia, offline, and asked for after a restart (the last case).
    const sent = await https('POST', '/command', { body: 'message leia Kept across a restart', token: T });
    expect([sent.status, sent.body.ok]).toEqual([200, true]);
  });

  it('stop: stops every recorded process by its PID and waits for each to exit', async () => {
    requireStarted();
    const before = recordedNow();
    const stopped = await recipe(['stop', run], 120_000);
    expect(stopped.code, stopped.stderr).toBe(0);
    for (const { name, pid, start } of before) {
      expect(stopped.stdout).toContain(`stopping ${name} (PID ${pid})`);
      expect(alive(pid, start), `${name} (PID ${pid}) gone`).toBe(false);
    }
    expect(recordedNow()).toEqual([]);
    const status = await recipe(['status', run], 30_000);
    expect(status.code).toBe(3);
  });

  it('start again on the same run directory: same CA, the stored message is still there; then stop', async () => {
    requireStarted();
    const ca = readFileSync(join(run, 'ca.pem'), 'utf8');
    const again = await start();
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(again.stdout).toContain('keeping the CA');
    expect(readFileSync(join(run, 'ca.pem'), 'utf8')).toBe(ca);

    const leia = await login('leia', 'alderaan');
    const events = await https('GET', '/events?wait=30', { token: leia });
    expect(texts(events)).toContain('yoda: Kept across a restart');

    const before = recordedNow();
    expect(before).toHaveLength(names.length);
    const stopped = await recipe(['stop', run], 120_000);
    expect(stopped.code, stopped.stderr).toBe(0);
    for (const { name, pid, start } of before) expect(alive(pid, start), `${name} (PID ${pid}) gone`).toBe(false);
  }, 300_000);
});
