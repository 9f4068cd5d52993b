import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Verification } from '../protocol.js';
import { troubles, type LatencySummary } from './figures.js';
import type { Options } from './options.js';
import { plots } from './plots.js';
import type { ScenarioResult } from './scenario.js';

/** All scenarios against one server checkout. */
export interface Run {
  /**
   * "run"; with a baseline "after" and "before", or the runtimes ("node v24.1.0",
   * "node v20.19.0") when the two runs differ only by the server's node.
   */
  label: string;
  serverRoot: string;
  commit: string;
  shortCommit: string;
  /** Tracked files had uncommitted changes when the bench started. */
  dirty: boolean;
  /** What the server's node says with --version (absent in results written before --node). */
  serverNode?: string;
  serverNodePath?: string;
  measured: string;
  startedAt: string;
  durationS: number;
  scenarios: ScenarioResult[];
}

/** Scenario 1 against a real XMPP server (`--peers`), in the same sitting. */
export interface PeerRun {
  /** 'ejabberd 23.01', 'Prosody 0.12.3'. */
  label: string;
  peer: string;
  /** The server's upstream version. */
  version: string;
  /** Debian package versions of the server and its runtime. */
  packages: Record<string, string>;
  /** apt-get installed it during this run. */
  installedByBench: boolean;
  installS?: number;
  measured: string;
  /** How it was started (temporary paths as <dir>). */
  command: string;
  /** The configuration file the bench wrote for it. */
  config: string;
  startedAt: string;
  durationS: number;
  scenarios: ScenarioResult[];
}

export interface Results {
  bench: string;
  formatVersion: number;
  startedAt: string;
  durationS: number;
  command: string;
  argv: string[];
  smoke: boolean;
  options: Options;
  machine: {
    cores: number;
    cpuModel: string;
    memoryBytes: number;
    freeMemoryBytesAtStart: number;
    os: string;
    node: string;
    redis: string;
    openFileLimit: number | null;
    /** 1, 5 and 15 minute load averages: other work on the machine competes with the bench. */
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  users: string;
  runs: Run[];
  /** Scenario 1 against real XMPP servers, with --peers. */
  peers?: PeerRun[];
  /** Everything lost, refused, duplicated or failed, one line each; empty when clean. */
  problems?: string[];
}

/** What went wrong in a run, in words: the summary puts these at the top. */
export function problemsOf(run: Pick<Run, 'label' | 'scenarios'>): string[] {
  const out: string[] = [];
  for (const s of run.scenarios) {
    const where = `${run.label}, scenario ${s.scenario}`;
    if (s.status === 'failed') out.push(`${where} failed: ${(s.error ?? '').split('\n')[0]}`);
    if (s.status === 'deadline') out.push(`${where} stopped at a deadline: ${s.notes.filter((n) => n.includes('deadline')).join('; ')}`);
    if (s.verification) {
      const t = troubles(s.verification);
      if (t.length) out.push(`${where}: of ${s.verification.sent} messages sent, ${t.join(', ')}`);
    }
    for (const note of s.notes) if (/missing|never got|could not/.test(note)) out.push(`${where}: ${note}`);
  }
  return out;
}

/** Figures are read back loosely: each scenario's shape is in its own file. */
type F = Record<string, any>;

function fig(run: Pick<Run, 'scenarios'> | undefined, scenario: number): F | undefined {
  const s = run?.scenarios.find((r) => r.scenario === scenario && r.status !== 'failed');
  return s?.figures as F | undefined;
}

const num = (v: unknown, digits = 1): string => (typeof v === 'number' && Number.isFinite(v) ? (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : String(Math.round(v * 10 ** digits) / 10 ** digits)) : 'n/a');
const lat = (l: LatencySummary | undefined | null) => (l && l.count ? `${num(l.p50Ms, 2)} / ${num(l.p90Ms, 2)} / ${num(l.p99Ms, 2)} / ${num(l.maxMs, 2)}` : 'n/a');

/** The login step nearest to `online` users. */
function stepNear(f: F | undefined, online: number): F | undefined {
  const steps = (f?.steps ?? []) as F[];
  let best: F | undefined;
  for (const s of steps) if (!best || Math.abs(s.online - online) < Math.abs(best.online - online)) best = s;
  return best && Math.abs(best.online - online) <= online * 0.2 ? best : undefined;
}

interface Headline {
  figure: string;
  value: (run: Run) => number | null | undefined;
  unit: string;
  /** Higher is better (for the ratio's reading). */
  higherIsBetter: boolean;
}

function headlines(o: Options): Headline[] {
  const h: Headline[] = [
    { figure: '1 TCP closed loop, delivered', value: (r) => fig(r, 1)?.closedLoop?.deliveredPerSecond, unit: 'msgs/s', higherIsBetter: true },
    { figure: `1 TCP open loop ${o.rate} msgs/s, p50`, value: (r) => fig(r, 1)?.headline?.openLoopLatency?.p50Ms, unit: 'ms', higherIsBetter: false },
    { figure: `1 TCP open loop ${o.rate} msgs/s, p99`, value: (r) => fig(r, 1)?.headline?.openLoopLatency?.p99Ms, unit: 'ms', higherIsBetter: false },
    { figure: '2 HTTP closed loop, delivered', value: (r) => fig(r, 2)?.closedLoop?.deliveredPerSecond, unit: 'msgs/s', higherIsBetter: true },
    { figure: `2 HTTP open loop ${o.rate} msgs/s, p99`, value: (r) => fig(r, 2)?.headline?.openLoopLatency?.p99Ms, unit: 'ms', higherIsBetter: false },
  ];
  for (const n of [250, 1000, 2000, 3000, 4000].filter((n) => n <= o.logins)) {
    h.push({ figure: `3 time per login at ~${n} online`, value: (r) => stepNear(fig(r, 3), n)?.msPerLogin, unit: 'ms', higherIsBetter: false });
    h.push({ figure: `3 Redis commands per login at ~${n} online`, value: (r) => stepNear(fig(r, 3), n)?.redisPerLogin?.total, unit: '', higherIsBetter: false });
  }
  h.push(
    { figure: '3 users online reached', value: (r) => ((fig(r, 3)?.steps ?? []) as F[]).at(-1)?.online, unit: '', higherIsBetter: true },
    { figure: '4 connections reached (TCP + HTTP)', value: (r) => (fig(r, 4) ? fig(r, 4)!.tcpSessions + fig(r, 4)!.httpSessions : null), unit: '', higherIsBetter: true },
    { figure: '4 server RSS idle', value: (r) => fig(r, 4)?.serverRssIdleMiB, unit: 'MiB', higherIsBetter: false },
    { figure: '4 server RSS loaded', value: (r) => fig(r, 4)?.serverRssLoadedMiB, unit: 'MiB', higherIsBetter: false },
    { figure: '4 server RSS per connection', value: (r) => fig(r, 4)?.serverRssPerConnectionKiB, unit: 'KiB', higherIsBetter: false },
    { figure: '4 Redis used memory loaded', value: (r) => fig(r, 4)?.redisUsedLoadedMiB, unit: 'MiB', higherIsBetter: false },
    { figure: '4 probe command reply p99, all connected', value: (r) => fig(r, 4)?.probeReply?.p99Ms, unit: 'ms', higherIsBetter: false },
  );
  for (const n of o.fanout) {
    h.push({ figure: `5 broadcast to ${n}: last recipient (median)`, value: (r) => ((fig(r, 5)?.points ?? []) as F[]).find((p) => p.recipients === n)?.lastArrival?.p50Ms, unit: 'ms', higherIsBetter: false });
  }
  h.push(
    { figure: '6 server RSS growth while a reader stalls', value: (r) => fig(r, 6)?.serverRssGrowthMiB, unit: 'MiB', higherIsBetter: false },
    { figure: "6 others' p99 during the stall", value: (r) => fig(r, 6)?.othersDuringStall?.p99Ms, unit: 'ms', higherIsBetter: false },
    { figure: '7 Redis: message-like script calls/s', value: (r) => fig(r, 7)?.messageScriptPerSecond, unit: '/s', higherIsBetter: true },
    { figure: '7 scenario 1 msgs/s over script calls/s', value: (r) => fig(r, 7)?.scenario1OverScript, unit: '', higherIsBetter: true },
  );
  return h;
}

function verificationLine(v: Verification | undefined): string {
  if (!v) return '';
  const t = troubles(v);
  return `${num(v.sent, 0)} sent, ${num(v.delivered, 0)} delivered and checked${t.length ? `; **${t.join(', ')}**` : '; none lost, refused, duplicated, misrouted or foreign'}`;
}

const cpuLine = (c: F) => `server ${c.server}${c.redis === null ? ' (the daemon and every process under it)' : `, Redis ${c.redis}`}, driver ${c.driver}, other processes ${c.otherProcesses ?? 'n/a'}`;
const cpuCell = (c: F) => `${c.server} / ${c.redis ?? '-'} / ${c.driver} / ${c.otherProcesses ?? 'n/a'}`;

function scenarioSection(run: Pick<Run, 'label'>, s: ScenarioResult): string[] {
  const f = s.figures as F;
  const lines = [`### ${s.scenario}. ${s.title} (${run.label}: ${s.status}, ${s.durationS} s)`, ''];
  if (s.status === 'failed') return [...lines, '```', (s.error ?? '').slice(0, 2000), '```', ''];
  lines.push(`Settings: ${Object.entries(s.settings).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`).join(', ')}.`, '');
  if (s.verification) lines.push(`Checked: ${verificationLine(s.verification)}.`, '');
  switch (s.scenario) {
    case 1:
    case 2: {
      const c = f.closedLoop as F;
      lines.push(
        `Closed loop: **${num(c.deliveredPerSecond)} msgs/s** delivered; latency p50/p90/p99/max ${lat(c.latency)} ms; CPU (cores) ${cpuLine(c.cpu)}; server RSS ${c.serverRssMiB} MiB${c.redisRssMiB !== undefined ? `, Redis RSS ${c.redisRssMiB} MiB` : ''}.`,
        '',
        '| offered msgs/s | delivered msgs/s | latency p50 / p90 / p99 / max (ms) | reply p99 (ms) | CPU server / Redis / driver / other processes | sends the driver made late (>5 ms) | saturated |',
        '|---:|---:|---|---:|---|---:|---|',
        ...(f.openLoop as F[]).map((p) => `| ${num(p.offered, 0)} | ${num(p.deliveredPerSecond)} | ${lat(p.latency)} | ${p.replyLatency.count ? num(p.replyLatency.p99Ms, 2) : 'none'} | ${cpuCell(p.cpu)} | ${p.driverLagged ?? ''} | ${p.saturated ? 'yes' : ''} |`),
        '',
      );
      break;
    }
    case 3:
      lines.push(
        '| online | ms/login | ms/login until presence delivered | login reply p50 / p99 (ms) | Redis cmds/login (scripts) | ms/logout | Redis cmds/logout | broadcast: reply / last arrival (ms) | Redis cmds/broadcast | server RSS MiB |',
        '|---:|---:|---:|---|---:|---:|---:|---|---:|---:|',
        ...(f.steps as F[]).map(
          (p) =>
            `| ${p.online} | ${num(p.msPerLogin, 2)} | ${num(p.msPerLoginDelivered, 2)} | ${num(p.reply.p50Ms, 2)} / ${num(p.reply.p99Ms, 2)} | ${num(p.redisPerLogin.total)} (${num(p.redisPerLogin.scripts)}) | ${p.logout ? num(p.logout.msPerLogout, 2) : ''} | ${p.logout ? num(p.logout.redisPerLogout.total) : ''} | ${p.broadcast ? `${num(p.broadcast.replyMs, 2)} / ${num(p.broadcast.lastArrivalMs, 2)}` : ''} | ${p.broadcast ? num(p.broadcast.redis.total, 0) : ''} | ${num(p.serverRssMiB)} |`,
        ),
        '',
      );
      {
        const last = (f.steps as F[]).at(-1);
        if (last) {
          const top = Object.entries(last.redisPerLogin.byCommand as Record<string, number>).sort((a, b) => b[1] - a[1]).slice(0, 8);
          lines.push(`Redis commands per login at ${last.online} online, by command: ${top.map(([c, n]) => `${c} ${n}`).join(', ')}.`, '');
        }
      }
      break;
    case 4:
      lines.push(
        `Reached ${f.tcpSessions} TCP sessions (2 of them probes) and ${f.httpSessions} parked long-polls. Server RSS idle ${f.serverRssIdleMiB} MiB, loaded ${f.serverRssLoadedMiB} MiB: **${f.serverRssPerConnectionKiB} KiB per connection** (${f.connectionsPerGiB ? num(f.connectionsPerGiB, 0) : 'n/a'} connections per GiB). Redis used memory ${f.redisUsedIdleMiB} -> ${f.redisUsedLoadedMiB} MiB (RSS ${f.redisRssLoadedMiB} MiB). Driver RSS ${(f.driverRssMiB as number[]).join(', ')} MiB.`,
        '',
        `Probe user, all connected: reply p50/p90/p99/max ${lat(f.probeReply)} ms; delivery ${lat(f.probeDelivery)} ms.`,
        '',
        '| TCP | HTTP | server RSS MiB | Redis used MiB | at s |',
        '|---:|---:|---:|---:|---:|',
        ...(f.curve as F[]).map((p) => `| ${p.tcp} | ${p.http} | ${p.serverRssMiB} | ${p.redisUsedMiB} | ${p.elapsedS} |`),
        '',
      );
      break;
    case 5:
      lines.push(
        '| recipients | last recipient p50 / max (ms) | reply p50 (ms) | missing |',
        '|---:|---|---:|---:|',
        ...((f.points ?? []) as F[]).map((p) => `| ${p.recipients} | ${num(p.lastArrival.p50Ms, 2)} / ${num(p.lastArrival.maxMs, 2)} | ${num(p.replyMs.p50Ms, 2)} | ${p.missing} |`),
        '',
      );
      break;
    case 6:
      lines.push(
        `Server RSS ${f.serverRssBeforeMiB} MiB before the stall, peak ${f.serverRssPeakMiB} MiB (+${f.serverRssGrowthMiB} MiB). Reader ${f.readerCutOff ? `cut off by the server ${f.cutOffAfterS === null || f.cutOffAfterS >= Number(s.settings.stallS) ? 'during the stall (seen only when it read again: an unread socket does not see the close)' : `${f.cutOffAfterS} s into the stall`}${f.resumed ? ', came back with resume' : ''}` : 'kept connected'}; ${f.catchUpS !== null ? `caught up with every accepted message ${f.catchUpS} s after reading again` : '**never got every accepted message**'}. Flood: ${f.flood.sent} sent, ${f.flood.delivered} delivered${f.flood.troubles.length ? `, ${f.flood.troubles.join(', ')}` : ''}.`,
        '',
        `Others' latency p50/p90/p99/max: control ${lat(f.othersControl)} ms; during the stall ${lat(f.othersDuringStall)} ms (p99 x${f.othersP99Ratio ?? 'n/a'}).`,
        '',
      );
      break;
    case 7:
      lines.push(
        '| work | pipeline | requests/s | avg latency ms | Redis CPU |',
        '|---|---:|---:|---:|---:|',
        ...(f.runs as F[]).map((r) => `| ${r.name} | ${r.pipeline} | ${num(r.requestsPerSecond, 0)} | ${num(r.avgLatencyMs, 3)} | ${r.redisCpu} |`),
        '',
        `Scenario 1 delivered ${f.scenario1MsgsPerSecond ? num(f.scenario1MsgsPerSecond) : 'n/a'} msgs/s; the message-like script alone runs ${num(f.messageScriptPerSecond, 0)} calls/s unpipelined: ratio **${f.scenario1OverScript ?? 'n/a'}**.`,
        '',
      );
      break;
  }
  for (const note of s.notes) lines.push(`- ${note}`);
  if (s.notes.length) lines.push('');
  return lines;
}

/** Scenario 1's figures that the comparison with the peers reads, from one run or peer. */
function peerFigures(r: Pick<Run, 'scenarios'>): { closed?: number; p50?: number; p99?: number; max?: number; rss?: number; rssWithRedis?: number; rssAfterLoad?: number; cpu?: F } | null {
  const f = fig(r, 1);
  if (!f) return null;
  const open = f.headline?.openLoopLatency as LatencySummary | null | undefined;
  const c = f.closedLoop as F;
  return {
    closed: c?.deliveredPerSecond,
    p50: open?.count ? open.p50Ms : undefined,
    p99: open?.count ? open.p99Ms : undefined,
    max: open?.count ? open.maxMs : undefined,
    rss: c?.serverRssMiB,
    rssWithRedis: typeof c?.redisRssMiB === 'number' ? c.serverRssMiB + c.redisRssMiB : undefined,
    rssAfterLoad: f.headline?.serverRssAfterLoadMiB ?? (f.openLoop as F[] | undefined)?.at(-1)?.serverRssMiB,
    cpu: c?.cpu,
  };
}

/** `1.07x ejabberd (better)`: ours over the peer's, read by whether higher is better. */
function ratioCell(ours: number | undefined, theirs: number | undefined, peer: string, higherIsBetter: boolean): string {
  if (typeof ours !== 'number' || typeof theirs !== 'number' || theirs === 0) return 'n/a';
  const r = ours / theirs;
  const verdict = Math.abs(r - 1) < 0.05 ? '' : (r > 1) === higherIsBetter ? ' (better)' : ' (worse)';
  return `${num(r, 2)}x ${peer}${verdict}`;
}

/**
 * Scenario 1 beside the peers: one row per server, then our figures over
 * each peer's. Empty without --peers.
 */
function peersSection(results: Results): string[] {
  const peers = results.peers ?? [];
  if (peers.length === 0) return [];
  const o = results.options;
  const lines = [
    '## Scenario 1 beside real XMPP servers',
    '',
    `${o.users} users, each keeping ${o.window} messages in flight (closed loop, a message done when it reaches its recipient), then an open loop at ${num(o.rate, 0)} msgs/s; the same driver for every server, ours over its TCP protocol, the peers over XMPP with the bench's own client. RSS of the serving processes after the closed loop: our server's node process (Redis, which stores every message, beside it), a peer's daemon with every process under it. Run one after another in this sitting: ours first, then ${peers.map((p) => p.label).join(', then ')}.`,
    '',
    `| server | closed loop msgs/s | open loop ${num(o.rate, 0)} msgs/s p50 / p99 / max (ms) | RSS after the closed loop (MiB) | RSS after the whole load (MiB) | CPU in the closed loop: server / Redis / driver / other |`,
    '|---|---:|---|---|---:|---|',
  ];
  const row = (label: string, r: Pick<Run, 'scenarios'>, processes?: Record<string, number>) => {
    const f = peerFigures(r);
    if (!f) return `| ${label} | failed | | | | |`;
    const rss = `${num(f.rss)}${f.rssWithRedis !== undefined && f.rss !== undefined ? ` (with Redis ${num(f.rssWithRedis)})` : ''}${processes ? ` (${Object.entries(processes).map(([n, v]) => `${n} ${num(v)}`).join(', ')})` : ''}`;
    return `| ${label} | ${num(f.closed)} | ${num(f.p50, 2)} / ${num(f.p99, 2)} / ${num(f.max, 2)} | ${rss} | ${num(f.rssAfterLoad)} | ${f.cpu ? cpuCell(f.cpu) : 'n/a'} |`;
  };
  for (const run of results.runs) lines.push(row(`this server${results.runs.length > 1 ? `, ${run.label}` : ''} (${run.shortCommit}${run.serverNode ? `, node ${run.serverNode}` : ''})`, run));
  for (const p of peers) lines.push(row(p.label, p, fig(p, 1)?.peer?.processesAfterLoadMiB as Record<string, number> | undefined));
  lines.push('', `| figure, this server over the peer | ${peers.map((p) => p.label).join(' | ')} |`, `|---|${peers.map(() => '---:|').join('')}`);
  const figuresToCompare: [string, (f: NonNullable<ReturnType<typeof peerFigures>>) => number | undefined, boolean][] = [
    ['closed loop msgs/s', (f) => f.closed, true],
    [`open loop ${num(o.rate, 0)} msgs/s p50`, (f) => f.p50, false],
    [`open loop ${num(o.rate, 0)} msgs/s p99`, (f) => f.p99, false],
    [`open loop ${num(o.rate, 0)} msgs/s max`, (f) => f.max, false],
    ['RSS after the closed loop: the serving process', (f) => f.rss, false],
    ['RSS after the closed loop: server + Redis', (f) => f.rssWithRedis, false],
  ];
  for (const run of results.runs) {
    const ours = peerFigures(run);
    for (const [name, pick, higherIsBetter] of figuresToCompare) {
      const cells = peers.map((p) => {
        const theirs = peerFigures(p);
        const theirValue = theirs ? (name.endsWith('server + Redis') ? theirs.rss : pick(theirs)) : undefined;
        return ratioCell(ours ? pick(ours) : undefined, theirValue, p.label.split(' ')[0], higherIsBetter);
      });
      lines.push(`| ${results.runs.length > 1 ? `${run.label}: ` : ''}${name} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('', 'Ratios read ours over theirs: above 1x is more messages per second, or more milliseconds or MiB. See bench/README.md, "Beside real XMPP servers", for what each server does with a message (ours stores every one in Redis) and the fairness caveats.', '');
  return lines;
}

function peerDetails(p: PeerRun): string[] {
  const f = fig(p, 1)?.peer as F | undefined;
  const lines = [`## Details: ${p.label}`, '', `- Measured: ${p.measured}`, `- Packages: ${Object.entries(p.packages).map(([k, v]) => `${k} ${v}`).join(', ')}${p.installedByBench ? ` (installed by this run with apt-get, ${p.installS} s)` : ''}`];
  if (f) {
    lines.push(
      `- Ready ${f.startS} s after start; ${p.scenarios[0]?.settings.users ?? '?'} users created in ${f.usersCreatedS} s (${f.usersHow})`,
      `- RSS idle, users created, nobody logged in: ${f.rssIdleMiB} MiB (${Object.entries(f.processesIdleMiB as Record<string, number>).map(([n, v]) => `${n} ${v}`).join(', ')}); after the load: ${Object.entries(f.processesAfterLoadMiB as Record<string, number>).map(([n, v]) => `${n} ${v}`).join(', ')} MiB`,
    );
  }
  lines.push('', 'Its configuration, as the bench wrote it:', '', '```', p.config.trimEnd(), '```', '');
  for (const s of p.scenarios) lines.push(...scenarioSection(p, s));
  return lines;
}

/** The machine's Node is the runner's and the drivers'; the server's may differ per run. */
function serverNodes(runs: Run[]): string {
  if (!runs.some((r) => r.serverNode)) return '';
  return ` for the runner and its drivers, the server on node ${runs.map((r) => r.serverNode ?? 'unknown').join(' then ')}`;
}

/** One measured line, or one per run when the runs were measured differently (another node). */
function measuredLines(runs: Run[]): string[] {
  if (runs.every((r) => r.measured === runs[0].measured)) return [`- Measured: ${runs[0].measured}`];
  return runs.map((r) => `- Measured, ${r.label}: ${r.measured}`);
}

export function summary(results: Results, plotFiles: { file: string; title: string }[]): string {
  const [main, baseline] = results.runs;
  const problems = results.problems ?? [];
  const m = results.machine;
  const lines: string[] = [`# Bench results ${results.startedAt.slice(0, 10)}, ${results.runs.map((r) => `${r.label} ${r.shortCommit}${r.dirty ? ' (uncommitted changes)' : ''}`).join(' vs ')}`, ''];
  if (results.smoke) lines.push('> Smoke run: tiny sizes that only show the bench works. These figures mean nothing.', '');
  if (problems.length) {
    lines.push('> **This run had losses or failures:**', ...problems.map((p) => `> - ${p}`), '');
  } else {
    lines.push('Every message, broadcast and presence event the driver counted was checked: none lost, refused, duplicated, misrouted or foreign.', '');
  }
  lines.push(
    `- Command: \`${results.command}\` (${Math.round(results.durationS / 60)} min)`,
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB, ${m.os}, Node ${m.node}${serverNodes(results.runs)}, ${m.redis.split(' ').slice(0, 3).join(' ')}, open-file limit ${m.openFileLimit ?? 'unknown'}; load average ${m.loadAverageAtStart?.join(' ') ?? '?'} at start, ${m.loadAverageAtEnd?.join(' ') ?? '?'} at the end (2.0 = both cores busy)`,
    ...measuredLines(results.runs),
    ...results.runs.map((r) => `- ${r.label}: ${r.serverRoot} at ${r.commit}${r.dirty ? ' with uncommitted changes' : ''}${r.serverNode ? `, server on node ${r.serverNode} (${r.serverNodePath})` : ''}`),
    `- Users: ${results.users}`,
    `- Driver: separate processes on the same machine, speaking only the public TCP and HTTP protocols${results.peers?.length ? ' (and XMPP to the peers, with the bench\'s own minimal client)' : ''}; their CPU share is reported beside the server\'s and Redis\'s (1.0 = one core of the two).`,
    ...(results.peers?.length ? [`- Peers (scenario 1 only, after ours): ${results.peers.map((p) => `${p.label} (${Object.entries(p.packages).map(([k, v]) => `${k} ${v}`).join(', ')})`).join('; ')}`] : []),
    '',
    '## Headlines',
    '',
  );
  if (baseline) {
    lines.push(`| figure | ${baseline.label} (${baseline.shortCommit}) | ${main.label} (${main.shortCommit}) | ${main.label} / ${baseline.label} |`, '|---|---:|---:|---:|');
    for (const h of headlines(results.options)) {
      const a = h.value(main);
      const b = h.value(baseline);
      const r = typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null;
      const verdict = r === null || Math.abs(r - 1) < 0.05 ? '' : (r > 1) === h.higherIsBetter ? ' better' : ' worse';
      const ratio = r === null ? 'n/a' : `${num(r, 2)}x${verdict}`;
      if (a == null && b == null) continue;
      lines.push(`| ${h.figure} | ${num(b)} ${h.unit} | ${num(a)} ${h.unit} | ${ratio} |`);
    }
  } else {
    lines.push('| figure | value |', '|---|---:|');
    for (const h of headlines(results.options)) {
      const v = h.value(main);
      if (v == null) continue;
      lines.push(`| ${h.figure} | ${num(v)} ${h.unit} |`);
    }
  }
  lines.push('', 'Latency columns read p50 / p90 / p99 / max, in milliseconds, from HDR histograms (hdr-histogram-js); open-loop latency runs from when a message was due to leave, so a server or driver falling behind shows in it.', '');
  lines.push(...peersSection(results));
  if (plotFiles.length) {
    lines.push('## Plots', '');
    for (const p of plotFiles) lines.push(`![${p.title}](${p.file})`, '');
  }
  for (const run of results.runs) {
    lines.push(`## Details: ${run.label} (${run.shortCommit})`, '');
    for (const s of run.scenarios) lines.push(...scenarioSection(run, s));
  }
  for (const p of results.peers ?? []) lines.push(...peerDetails(p));
  return lines.join('\n');
}

/**
 * Results are committed: paths of the machine they ran on (this checkout, a
 * baseline checkout, the user's home, where a Node binary was cached)
 * become descriptions.
 */
function withoutMachinePaths(results: Results): Results {
  const repo = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
  const baselines = results.runs.map((r) => r.serverRoot).filter((root) => root !== repo && root.startsWith('/'));
  let text = JSON.stringify(results);
  for (const [path, name] of [
    [repo, '<this checkout>'],
    ...baselines.map((root) => [root, '<baseline checkout>'] as const),
    [homedir(), '~'],
  ] as const) {
    if (path.length > 1) text = text.split(path).join(name);
  }
  return JSON.parse(text) as Results;
}

/** Writes results.json, summary.md and the SVG plots into `dir`; returns the file names. */
export async function writeResults(dir: string, given: Results): Promise<string[]> {
  const results = withoutMachinePaths(given);
  results.problems = [...results.runs, ...(results.peers ?? [])].flatMap(problemsOf);
  const rendered = await plots(results.runs, results.peers ?? []);
  for (const p of rendered) writeFileSync(join(dir, p.file), p.svg);
  writeFileSync(join(dir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(dir, 'summary.md'), summary(results, rendered) + '\n');
  return ['results.json', 'summary.md', ...rendered.map((p) => p.file)];
}
