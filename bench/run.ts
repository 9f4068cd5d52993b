import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem, type as osType } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, SCENARIOS, usage, UsageError, type Options } from './runner/options.js';
import { ensureInstalled, peerTitle, type PeerInstall } from './runner/peers.js';
import { buildSnapshot, nodeVersion, stopAll } from './runner/processes.js';
import { progress } from './runner/progress.js';
import { writeResults, type PeerRun, type Run, type Results } from './runner/report.js';
import type { ScenarioContext, ScenarioResult } from './runner/scenario.js';
import { capacity } from './runner/scenarios/capacity.js';
import { ceiling } from './runner/scenarios/ceiling.js';
import { fanout } from './runner/scenarios/fanout.js';
import { logins } from './runner/scenarios/logins.js';
import { directMessages, peerDirectMessages } from './runner/scenarios/messages.js';
import { slowReader } from './runner/scenarios/slow-reader.js';

/**
 * `npm run bench`: builds the server checkout(s), runs the chosen scenarios
 * one after another, each on its own redis-server and server, and writes
 * the results. Exits 0 when every scenario ran (losses are reported, not
 * fatal), 1 when one failed, 2 on a usage error.
 */
const REPO = fileURLToPath(new URL('..', import.meta.url));

const scenarioTable: Record<number, (ctx: ScenarioContext) => Promise<ScenarioResult>> = {
  1: (ctx) => directMessages(ctx, 'tcp'),
  2: (ctx) => directMessages(ctx, 'http'),
  3: logins,
  4: capacity,
  5: fanout,
  6: slowReader,
  7: ceiling,
};

function git(root: string, args: string[]): string {
  try {
    return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function openFileLimit(): number | null {
  try {
    const limits = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return Number(limits) || null;
  } catch {
    return null;
  }
}

function version(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** One run to make: a checkout, the node its server runs on, and how the results name it. */
interface Plan {
  label: string;
  root: string;
  commit: string;
  /** Tracked files had uncommitted changes when the bench started. */
  dirty: boolean;
  node: string;
  nodeVersion: string;
}

function plan(root: string, node: string, nodeVersion: string): Plan {
  const commit = git(root, ['rev-parse', 'HEAD']);
  const dirty = git(root, ['status', '--porcelain', '--untracked-files=no']) !== '';
  return { label: 'run', root, commit, dirty, node, nodeVersion };
}

/**
 * How the results name each run. Two runs of the same sources on different
 * runtimes are named by their runtime ('node v24.1.0' vs 'node v20.19.0'):
 * 'after' and 'before' would say the code changed where only Node did.
 */
function labelRuns(plans: Plan[]): void {
  if (plans.length < 2) return;
  const [a, b] = plans;
  const sameSources = a.root === b.root || (a.commit !== '' && a.commit === b.commit && !a.dirty && !b.dirty);
  if (a.nodeVersion === b.nodeVersion) [a.label, b.label] = ['after', 'before'];
  else if (sameSources) [a.label, b.label] = [`node ${a.nodeVersion}`, `node ${b.nodeVersion}`];
  else [a.label, b.label] = [`after (node ${a.nodeVersion})`, `before (node ${b.nodeVersion})`];
}

/**
 * The directory the server runs from: a snapshot built once per checkout and
 * shared by the runs of that checkout, so that a runtime comparison runs the
 * very same build on both (the checkout may be edited between the runs).
 */
async function serverDir(root: string, options: Options, snapshots: Map<string, string>): Promise<string> {
  if (!options.build) return root;
  const built = snapshots.get(root) ?? (await buildSnapshot(root));
  snapshots.set(root, built);
  return built;
}

async function runAll(p: Plan, options: Options, snapshots: Map<string, string>, profileDir: string): Promise<Run> {
  const started = new Date();
  const scenarios: ScenarioResult[] = [];
  try {
    const dir = await serverDir(p.root, options, snapshots);
    const ctx: ScenarioContext = { options, serverRoot: dir, serverNode: p.node, runId: randomBytes(4).toString('hex'), profileDir, earlier: new Map() };
    progress(`${p.label}: the server runs on ${p.node} (node ${p.nodeVersion})`);
    await runScenarios(p.label, ctx, scenarios);
  } finally {
    await stopAll();
  }
  return {
    label: p.label,
    serverRoot: p.root,
    commit: p.commit,
    shortCommit: p.commit.slice(0, 7),
    dirty: p.dirty,
    serverNode: p.nodeVersion,
    serverNodePath: p.node,
    measured: `the built server: ${options.build ? 'npm run build in a copy of the checkout\'s sources' : 'the checkout\'s existing dist/ (--no-build)'}, then node dist/entries/node.js <port> 60 ${options.timeout} --host 127.0.0.1 --http-port <port> --redis <url> --credentials <empty file> --command-rate 0 --login-rate 0 --byte-rate 0 (one replica, its own redis-server) on node ${p.nodeVersion} (${p.node})`,
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
    scenarios,
  };
}

async function runScenarios(label: string, ctx: ScenarioContext, scenarios: ScenarioResult[]): Promise<void> {
  for (const n of ctx.options.scenarios) {
    progress(`${label}: scenario ${n}: ${SCENARIOS[n]}`);
    const t0 = Date.now();
    let result: ScenarioResult;
    try {
      result = await scenarioTable[n](ctx);
    } catch (err) {
      result = {
        scenario: n,
        title: SCENARIOS[n],
        status: 'failed',
        error: err instanceof Error ? err.message : String(err),
        settings: {},
        notes: [],
        figures: {},
        durationS: Math.round((Date.now() - t0) / 1000),
      };
      progress(`${label}: scenario ${n} failed: ${result.error?.split('\n')[0]}`);
      await stopAll();
    }
    ctx.earlier.set(n, result);
    scenarios.push(result);
    progress(`${label}: scenario ${n} ${result.status} in ${result.durationS} s`);
  }
}

/**
 * Scenario 1 against each peer XMPP server, after the runs of our server,
 * in the same sitting and with the same options.
 */
async function runPeers(installs: PeerInstall[], options: Options): Promise<PeerRun[]> {
  const out: PeerRun[] = [];
  for (const install of installs) {
    const label = peerTitle(install);
    const started = new Date();
    const ran = { command: '', config: '' };
    progress(`${label}: scenario 1 over XMPP`);
    const ctx: ScenarioContext = { options, serverRoot: '', serverNode: '', runId: randomBytes(4).toString('hex'), profileDir: '', earlier: new Map() };
    let result: ScenarioResult;
    try {
      result = await peerDirectMessages(ctx, install, ran);
    } catch (err) {
      result = {
        scenario: 1,
        title: `Direct messages over XMPP, ${label}`,
        status: 'failed',
        error: err instanceof Error ? err.message : String(err),
        settings: {},
        notes: [],
        figures: {},
        durationS: Math.round((Date.now() - started.getTime()) / 1000),
      };
      progress(`${label}: failed: ${result.error?.split('\n')[0]}`);
      await stopAll();
    }
    progress(`${label}: scenario 1 ${result.status} in ${result.durationS} s`);
    out.push({
      label,
      peer: install.peer,
      version: install.version,
      packages: install.packages,
      installedByBench: install.installedByBench,
      ...(install.installS !== undefined ? { installS: install.installS } : {}),
      measured: `${label} (Debian ${Object.entries(install.packages).map(([p, v]) => `${p} ${v}`).join(', ')}), in the foreground as a child of the runner: ${ran.command || 'not started'}; the bench's own XMPP client in the driver (stream, SASL PLAIN, bind, presence, <message type='chat'> to the bare JID)`,
      command: ran.command,
      config: ran.config,
      startedAt: started.toISOString(),
      durationS: Math.round((Date.now() - started.getTime()) / 1000),
      scenarios: [result],
    });
  }
  return out;
}

/** Each server node's version, by path; refuses a path that is not a node (a usage error). */
function nodeVersions(options: Options): Map<string, string> {
  const versions = new Map<string, string>();
  const nodes: [string, string][] = [['--node', options.node]];
  if (options.baseline) nodes.push(['--baseline-node', options.baselineNode]);
  for (const [flag, node] of nodes) {
    try {
      versions.set(node, nodeVersion(node));
    } catch (err) {
      throw new Error(`${flag} ${node} is not an executable node: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return versions;
}

function commandLine(): string {
  const args = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  return process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}` : `tsx bench/run.ts ${args.join(' ')}`.trim();
}

async function main(): Promise<number> {
  let parsed: Options | 'help';
  try {
    parsed = parseOptions(process.argv.slice(2), REPO);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n\n${usage()}\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const options = parsed;
  if (options.render) {
    const dir = resolve(options.render);
    const files = await writeResults(dir, JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results);
    progress(`rendered again from ${join(dir, 'results.json')}: ${files.join(', ')}`);
    return 0;
  }
  options.serverRoot = resolve(options.serverRoot);
  if (options.baseline) options.baseline = resolve(options.baseline);
  for (const root of [options.serverRoot, options.baseline].filter(Boolean)) {
    if (!existsSync(join(root, 'package.json'))) {
      process.stderr.write(`error: ${root} is not a server checkout (no package.json)\n`);
      return 2;
    }
  }
  options.node = resolve(options.node);
  options.baselineNode = resolve(options.baselineNode);
  let versions: Map<string, string>;
  try {
    versions = nodeVersions(options);
  } catch (err) {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  let installs: PeerInstall[] = [];
  if (options.peers.length) {
    // Before anything is measured: an install is slow and may fail, and must not happen mid-run.
    try {
      installs = ensureInstalled(options.peers);
    } catch (err) {
      process.stderr.write(`error: --peers: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
    for (const i of installs) progress(`peer ${peerTitle(i)}: ${Object.entries(i.packages).map(([p, v]) => `${p} ${v}`).join(', ')}${i.installedByBench ? ` (installed by this run in ${i.installS} s)` : ''}`);
  }
  const plans = [plan(options.serverRoot, options.node, versions.get(options.node)!)];
  if (options.baseline) plans.push(plan(options.baseline, options.baselineNode, versions.get(options.baselineNode)!));
  labelRuns(plans);
  const started = new Date();
  const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
  const date = started.toISOString().slice(0, 10);
  const shortCommit = plans[0].commit.slice(0, 7) || 'unknown';
  let out = options.out ? (isAbsolute(options.out) ? options.out : resolve(options.out)) : join(REPO, 'bench', 'results', `${date}-${shortCommit}`);
  if (!options.out) for (let n = 2; existsSync(out); n++) out = join(REPO, 'bench', 'results', `${date}-${shortCommit}-${n}`);
  const snapshots = new Map<string, string>();
  const runs: Run[] = [];
  let peers: PeerRun[] = [];
  try {
    for (const p of plans) runs.push(await runAll(p, options, snapshots, options.profile ? join(out, 'profiles', p.label) : ''));
    if (installs.length) peers = await runPeers(installs, options);
  } finally {
    for (const dir of snapshots.values()) rmSync(dir, { recursive: true, force: true });
  }

  mkdirSync(out, { recursive: true });
  const cpuList = cpus();
  const results: Results = {
    bench: 'greatest-messaging bench',
    formatVersion: 1,
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
    command: commandLine(),
    argv: process.argv.slice(2),
    smoke: options.smoke,
    options,
    machine: {
      cores: cpuList.length,
      cpuModel: cpuList[0]?.model ?? 'unknown',
      memoryBytes: totalmem(),
      freeMemoryBytesAtStart: freemem(),
      os: `${osType()} ${release()}`,
      node: process.version,
      redis: version(process.env.REDIS_SERVER ?? 'redis-server', ['--version']),
      openFileLimit: openFileLimit(),
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    },
    users: 'bench users are created straight in Redis with a cheap scrypt hash (N=16, r=1, p=1) so scrypt is not what is measured; the server itself hashes with N=131072, r=8, and is told not to remake these at login (IM_REHASH_PASSWORDS=no)',
    runs,
    ...(peers.length ? { peers } : {}),
  };
  const files = await writeResults(out, results);
  progress(`results: ${files.join(', ')}`);
  process.stdout.write(`${out}\n`);
  return [...runs, ...peers].some((r) => r.scenarios.some((s) => s.status === 'failed')) ? 1 : 0;
}

let exiting = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (exiting) return;
    exiting = true;
    progress(`${signal}: stopping every process the bench started`);
    void stopAll().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    await stopAll();
    process.exit(1);
  },
);
