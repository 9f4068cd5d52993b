import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DriverStats, Target } from '../protocol.js';
import { DriverProcess } from './drivers.js';
import type { LoadEnvironment } from './environment.js';
import { freePort, start, type Child, type ProcSample } from './processes.js';
import { progress } from './progress.js';

/**
 * Real XMPP servers the bench compares ours with (`--peers`): Debian's
 * ejabberd and Prosody, installed with apt-get when missing, each run in the
 * foreground as a child of the runner from a minimal configuration in a
 * temporary directory (loopback only, a free port, no TLS, SASL PLAIN
 * allowed, nothing loaded that the load does not use, no shaper or rate
 * limit), with the bench's users created before the load. The driver
 * reaches them with its own minimal XMPP client (bench/driver/xmpp-session.ts).
 * Every process a peer starts is stopped by PID.
 */

export const PEER_NAMES = ['ejabberd', 'prosody'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** The XMPP domain of the bench users on every peer. */
export const PEER_DOMAIN = 'localhost';

interface PeerSpec {
  /** How the results name it (with its version). */
  title: string;
  /** Debian packages apt-get installs. */
  install: string[];
  /** Packages whose versions the results record (the server and its runtime). */
  versions: string[];
}

const SPECS: Record<PeerName, PeerSpec> = {
  ejabberd: { title: 'ejabberd', install: ['ejabberd'], versions: ['ejabberd', 'erlang-base'] },
  prosody: { title: 'Prosody', install: ['prosody'], versions: ['prosody', 'lua5.4'] },
};

/** What the results record of a peer's installation. */
export interface PeerInstall {
  peer: PeerName;
  /** Debian package versions, e.g. { ejabberd: '23.01-1', 'erlang-base': '1:25.2.3+dfsg-1' }. */
  packages: Record<string, string>;
  /** The server's own version (upstream part of its package's). */
  version: string;
  /** apt-get installed it during this run. */
  installedByBench: boolean;
  installS?: number;
}

function packageVersion(pkg: string): string | null {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Status}\t${Version}', pkg], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const [status, version] = r.stdout.split('\t');
  return status.endsWith(' installed') && version ? version : null;
}

/** `1:25.2.3+dfsg-1` -> `25.2.3`; `23.01-1` -> `23.01`. */
function upstream(version: string): string {
  return version.replace(/^\d+:/, '').replace(/-[^-]*$/, '').replace(/[+~].*$/, '');
}

function aptGet(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync('apt-get', args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

const POLICY = '/usr/sbin/policy-rc.d';

/**
 * Installs the peers' packages that are missing with `apt-get install -y`
 * (after `apt-get update` if the first try fails). Debian starts an
 * installed daemon through its init script: a `policy-rc.d` that denies it
 * (exit 101, Debian's documented switch) stands for the length of the
 * install when none exists, so no system ejabberd or Prosody is left running
 * beside the bench; one already there is left as it is. Throws with apt's
 * output on failure.
 */
export function ensureInstalled(peers: PeerName[]): PeerInstall[] {
  const missing = [...new Set(peers.flatMap((p) => SPECS[p].install))].filter((pkg) => packageVersion(pkg) === null);
  let installS = 0;
  if (missing.length) {
    progress(`peers: installing ${missing.join(', ')} with apt-get (not installed)`);
    const t0 = Date.now();
    const ownPolicy = !existsSync(POLICY);
    if (ownPolicy) {
      writeFileSync(POLICY, '#!/bin/sh\n# Written by the greatest-messaging bench for the length of an apt-get install: no daemon starts.\nexit 101\n');
      chmodSync(POLICY, 0o755);
    }
    try {
      let r = aptGet(['install', '-y', ...missing]);
      if (!r.ok) {
        progress('peers: apt-get install failed; apt-get update, then again');
        const u = aptGet(['update']);
        if (!u.ok) throw new Error(`apt-get update failed:\n${u.output.slice(-3000)}`);
        r = aptGet(['install', '-y', ...missing]);
      }
      if (!r.ok) throw new Error(`apt-get install -y ${missing.join(' ')} failed:\n${r.output.slice(-3000)}`);
    } finally {
      if (ownPolicy) unlinkSync(POLICY);
    }
    installS = Math.round((Date.now() - t0) / 100) / 10;
    progress(`peers: installed in ${installS} s`);
  }
  return peers.map((peer) => {
    const packages: Record<string, string> = {};
    for (const pkg of SPECS[peer].versions) packages[pkg] = packageVersion(pkg) ?? 'not installed';
    const own = packages[SPECS[peer].install[0]];
    if (own === 'not installed') throw new Error(`${peer}: package ${SPECS[peer].install[0]} is not installed after apt-get`);
    const installedByBench = SPECS[peer].install.some((pkg) => missing.includes(pkg));
    return { peer, packages, version: upstream(own), installedByBench, ...(installedByBench ? { installS } : {}) };
  });
}

export function peerTitle(install: PeerInstall): string {
  return `${SPECS[install.peer].title} ${install.version}`;
}

// ---------------------------------------------------------------- processes

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  rssBytes: number;
  cpuMs: number;
}

const TICK_MS = 10;

function procInfo(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { pid, ppid: Number(fields[1]), comm, rssBytes: rss ? Number(rss[1]) * 1024 : 0, cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS };
  } catch {
    return null;
  }
}

function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/** A process and every descendant of it, now. */
function tree(root: number): ProcInfo[] {
  const all = allProcesses();
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const rootInfo = all.find((p) => p.pid === root);
  if (!rootInfo) return [];
  const out: ProcInfo[] = [];
  const queue = [rootInfo];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(byParent.get(p.pid) ?? []));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopPid(pid: number, graceMs: number): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function epmdPids(): number[] {
  return allProcesses().filter((p) => p.comm === 'epmd').map((p) => p.pid);
}

// ---------------------------------------------------------------- a running peer

export interface PeerServer {
  peer: PeerName;
  port: number;
  pid: number;
  /** The configuration file as written (the temporary directory shown as <dir>). */
  config: string;
  /** The command that runs it (paths under <dir>). */
  command: string;
  startS: number;
  usersS: number;
  /** How the users were created. */
  usersHow: string;
  /** RSS and CPU of the daemon and every process under it. */
  sample(): ProcSample;
  /** RSS of each process of the tree now, MiB, by name (`beam.smp`, `erl_child_setup`, ...). */
  processes(): Record<string, number>;
  stop(): Promise<void>;
}

function xmppReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on('connect', () => socket.write(`<?xml version='1.0'?><stream:stream to='${PEER_DOMAIN}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`));
    socket.on('data', (chunk) => {
      text += chunk.toString('utf8');
      if (text.includes('features')) done(true);
    });
    socket.on('error', () => done(false));
  });
}

async function waitReady(what: string, child: Child, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.child.exitCode !== null || child.child.signalCode !== null) throw new Error(`${what} exited before it was ready:\n${child.output().slice(-3000)}`);
    if (await xmppReady(port)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready on port ${port} within ${timeoutMs / 1000} s:\n${child.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs `task` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await task(items[next++]);
  }));
}

/** The ejabberd configuration: everything not named here is off (no MAM, no TLS, no s2s, no shaper). */
function ejabberdConfig(port: number, httpPort: number): string {
  return `# Written by the greatest-messaging bench (bench/runner/peers.ts).
# One virtual host, one loopback client listener without TLS, SASL PLAIN allowed
# (ejabberd offers it on an unencrypted stream unless told otherwise), and only
# the modules the load uses: offline storage (ejabberd's default for messages
# to an offline user), rosters (looked up at login and presence). No MAM, no
# stream management, no carbons, no s2s, no shaper or rate limit.
hosts:
  - ${PEER_DOMAIN}
loglevel: warning
log_rotate_count: 0
certfiles: []
listen:
  -
    port: ${port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024
    shaper: none
    max_stanza_size: 262144
    starttls: false
    starttls_required: false
  # The admin API on loopback only, for creating the bench users (register only).
  -
    port: ${httpPort}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
auth_method: internal
auth_password_format: plain
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 5000
  c2s_shaper: none
max_fsm_queue: 100000
api_permissions:
  "bench users":
    from: mod_http_api
    who:
      ip: 127.0.0.1/8
    what: register
modules:
  mod_offline: {}
  mod_roster: {}
`;
}

/** Where Debian's ejabberd keeps its Erlang applications (the ERL_LIBS that ejabberdctl sets). */
function ejabberdLibs(): string {
  const r = spawnSync('dpkg', ['-L', 'ejabberd'], { encoding: 'utf8' });
  const app = r.stdout.split('\n').find((l) => /\/ejabberd-[^/]+\/ebin\/ejabberd\.app$/.test(l));
  if (!app) throw new Error('ejabberd: no ebin/ejabberd.app among the files of the ejabberd package');
  return dirname(dirname(dirname(app)));
}

async function registerEjabberd(httpPort: number, user: string, password: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/api/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user, host: PEER_DOMAIN, password }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (res.ok) return;
      throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
    } catch (err) {
      if (attempt >= 2) throw new Error(`ejabberd: registering ${user} failed: ${err instanceof Error ? err.message : String(err)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * ejabberd as Debian's `ejabberdctl foreground` runs it (the same `erl`
 * flags: +K true +P 250000, ERL_MAX_PORTS 32000), minus what needs the
 * ejabberd system user and Erlang distribution: no node name, so no epmd and
 * no cookie. The daemon is beam.smp (erl execs it, so the PID is its own);
 * erl_child_setup and inet_gethost run under it.
 */
async function startEjabberd(dir: string, users: string[], password: string): Promise<PeerServer> {
  const port = await freePort();
  const httpPort = await freePort();
  const spool = join(dir, 'spool');
  mkdirSync(spool);
  const configPath = join(dir, 'ejabberd.yml');
  const config = ejabberdConfig(port, httpPort);
  writeFileSync(configPath, config);
  const args = ['-noinput', '+K', 'true', '+P', '250000', '-mnesia', 'dir', `"${spool}"`, '-s', 'ejabberd'];
  const env = {
    EJABBERD_CONFIG_PATH: configPath,
    EJABBERD_LOG_PATH: join(dir, 'ejabberd.log'),
    ERL_LIBS: ejabberdLibs(),
    ERL_MAX_PORTS: '32000',
    ERL_MAX_ETS_TABLES: '1400',
    ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
    ERL_CRASH_DUMP_BYTES: '0',
  };
  const epmdBefore = new Set(epmdPids());
  const t0 = Date.now();
  const child = start('ejabberd', '/usr/bin/erl', args, dir, env);
  return running('ejabberd', child, dir, port, config, `EJABBERD_CONFIG_PATH=<dir>/ejabberd.yml erl ${args.join(' ').replace(dir, '<dir>')}`, t0, epmdBefore, async () => {
    await pool(users, 8, (user) => registerEjabberd(httpPort, user, password));
    return `ejabberd's admin API (mod_http_api, register, on a loopback listener), 8 at a time`;
  });
}

/** The Prosody configuration: only what the load uses; no TLS, no s2s, no limits module. */
function prosodyConfig(dir: string, port: number): string {
  return `-- Written by the greatest-messaging bench (bench/runner/peers.ts).
-- One virtual host, one loopback client port without TLS, SASL PLAIN allowed
-- unencrypted, passwords stored plain (so the bench can write its users), and
-- only the modules the load uses beside the ones Prosody always loads
-- (presence, message, iq, offline, c2s, posix): rosters and SASL. No MAM,
-- no carbons, no stream management, no s2s, no mod_limits (no rate limit).
run_as_root = true -- the bench runs as root; Prosody would otherwise switch to the prosody user, who cannot read ${'<dir>'}
pidfile = "${dir}/prosody.pid"
data_path = "${dir}/data"
certificates = "${dir}/certs"
log = { warn = "${dir}/prosody.log" }
c2s_ports = { ${port} }
c2s_interfaces = { "127.0.0.1" }
modules_disabled = { "s2s" }
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
modules_enabled = { "roster", "saslauth" }
VirtualHost "${PEER_DOMAIN}"
`;
}

/** Prosody's datamanager file names: every non-alphanumeric byte as %xx (`dm_t0` -> `dm%5ft0`). */
function prosodyPathEncode(name: string): string {
  return name.replace(/[^A-Za-z0-9]/g, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));
}

function luaString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
}

/**
 * Prosody as `prosody -F` (the foreground) with the bench's config file. The
 * daemon is lua5.4 (/usr/bin/prosody is a Lua script; env execs lua5.4 in
 * place). Users are written as internal_plain account files before it
 * starts: `prosodyctl register` (what an operator types) takes ~0.7 s a
 * user here, and writes exactly these files.
 */
async function startProsody(dir: string, users: string[], password: string): Promise<PeerServer> {
  const port = await freePort();
  mkdirSync(join(dir, 'certs'));
  const accounts = join(dir, 'data', prosodyPathEncode(PEER_DOMAIN), 'accounts');
  mkdirSync(accounts, { recursive: true });
  const tUsers = Date.now();
  for (const user of users) writeFileSync(join(accounts, `${prosodyPathEncode(user)}.dat`), `return {\n\t["password"] = ${luaString(password)};\n};\n`);
  const usersS = (Date.now() - tUsers) / 1000;
  const configPath = join(dir, 'prosody.cfg.lua');
  const config = prosodyConfig(dir, port);
  writeFileSync(configPath, config);
  const args = ['--config', configPath, '-F'];
  const t0 = Date.now();
  const child = start('prosody', '/usr/bin/prosody', args, dir);
  const server = await running('prosody', child, dir, port, config, `prosody --config <dir>/prosody.cfg.lua -F`, t0, null, async () => 'account files in its data directory (internal_plain), written before it started: what prosodyctl register writes');
  server.usersS = Math.round(usersS * 1000) / 1000;
  return server;
}

async function running(
  peer: PeerName,
  child: Child,
  dir: string,
  port: number,
  config: string,
  command: string,
  t0: number,
  epmdBefore: Set<number> | null,
  createUsers: () => Promise<string>,
): Promise<PeerServer> {
  /** Every PID ever seen under the daemon, and any epmd that appeared as it started: all stopped by PID at the end. */
  const seen = new Set<number>();
  const ownEpmd = new Set<number>();
  const look = () => {
    for (const p of tree(child.pid)) if (p.pid !== child.pid) seen.add(p.pid);
  };
  const stop = async () => {
    look();
    await child.stop(15_000);
    for (const pid of [...seen, ...ownEpmd]) await stopPid(pid, 3000);
  };
  try {
    await waitReady(peer, child, port, 90_000);
    const startS = (Date.now() - t0) / 1000;
    if (epmdBefore) for (const pid of epmdPids()) if (!epmdBefore.has(pid)) ownEpmd.add(pid);
    look();
    const tUsers = Date.now();
    const usersHow = await createUsers();
    const usersS = (Date.now() - tUsers) / 1000;
    return {
      peer,
      port,
      pid: child.pid,
      config: config.split(dir).join('<dir>'),
      command,
      startS: Math.round(startS * 10) / 10,
      usersS: Math.round(usersS * 1000) / 1000,
      usersHow,
      sample() {
        const procs = tree(child.pid);
        for (const p of procs) if (p.pid !== child.pid) seen.add(p.pid);
        const epmd = [...ownEpmd].map(procInfo).filter((p): p is ProcInfo => p !== null);
        const all = [...procs, ...epmd];
        return { rssBytes: all.reduce((a, p) => a + p.rssBytes, 0), cpuMs: all.reduce((a, p) => a + p.cpuMs, 0), at: performance.now() };
      },
      processes() {
        const out: Record<string, number> = {};
        for (const p of [...tree(child.pid), ...[...ownEpmd].map(procInfo).filter((q): q is ProcInfo => q !== null)]) out[p.comm] = Math.round(((out[p.comm] ?? 0) + p.rssBytes / 1024 / 1024) * 10) / 10;
        return out;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Temporary directories of running peers: removed at exit too, when a signal ends the runner before `withPeer` can. */
const liveDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

export interface PeerEnvironment extends LoadEnvironment {
  server: PeerServer;
  target: Target;
}

/**
 * Starts a peer with `users` (password `password`) and one driver, runs
 * `body`, and stops every process it started (by PID) and removes its
 * temporary directory whatever happens.
 */
export async function withPeer<T>(peer: PeerName, users: string[], password: string, runId: string, body: (env: PeerEnvironment) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `im-bench-${peer}-`));
  liveDirs.add(dir);
  const drivers: DriverProcess[] = [];
  let server: PeerServer | null = null;
  try {
    drivers.push(DriverProcess.fork(0));
    server = peer === 'ejabberd' ? await startEjabberd(dir, users, password) : await startProsody(dir, users, password);
    progress(`  ${peer} pid ${server.pid} on port ${server.port}: ready in ${server.startS} s; ${users.length} users created in ${server.usersS} s`);
    const target: Target = { host: '127.0.0.1', tcpPort: 0, httpPort: 0, xmpp: { host: '127.0.0.1', port: server.port, domain: PEER_DOMAIN } };
    await Promise.all(drivers.map((d) => d.init(target, runId)));
    const s = server;
    return await body({
      server: s,
      target,
      drivers,
      serverSample: () => s.sample(),
      redisSample: () => null,
      driverStats: (): Promise<DriverStats[]> => Promise.all(drivers.map((d) => d.call('stats', {}, 30_000))),
    });
  } finally {
    for (const d of drivers) await d.stop();
    if (server) await server.stop();
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
}
