import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { PeerRun, Run } from './report.js';

type Row = Record<string, string | number>;

/** Renders a Vega-Lite spec to an SVG string, headless (no browser, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const base = { $schema: SCHEMA, background: 'white', config: { font: 'sans-serif' } } as const;

function figures(run: Pick<Run, 'scenarios'>, scenario: number): Record<string, unknown> | undefined {
  const s = run.scenarios.find((r) => r.scenario === scenario && r.status !== 'failed');
  return s?.figures;
}

/** Open-loop latency percentiles against offered load, TCP and HTTP side by side. */
function latencySpec(runs: Run[]): TopLevelSpec | null {
  const rows: Row[] = [];
  for (const run of runs) {
    for (const [scenario, transport] of [[1, 'TCP'], [2, 'HTTP long-poll']] as const) {
      const points = (figures(run, scenario)?.openLoop ?? []) as { offered: number; latency: Record<string, number> }[];
      for (const p of points) {
        for (const [label, key] of [['p50', 'p50Ms'], ['p90', 'p90Ms'], ['p99', 'p99Ms'], ['max', 'maxMs']]) {
          rows.push({ run: run.label, transport, offered: p.offered, percentile: label, ms: Math.max(0.01, p.latency[key]) });
        }
      }
    }
  }
  if (rows.length === 0) return null;
  return {
    ...base,
    title: 'Send-to-receive latency against offered load (open loop)',
    data: { values: rows },
    facet: { column: { field: 'transport', type: 'nominal', title: null, sort: ['TCP', 'HTTP long-poll'] } },
    spec: {
      width: 320,
      height: 240,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'offered', type: 'quantitative', scale: { type: 'log' }, title: 'offered msgs/s' },
        y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms, log)' },
        color: { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99', 'max'] },
        strokeDash: { field: 'run', type: 'nominal' },
      },
    },
  } as TopLevelSpec;
}

/** Time and Redis commands per login, per logout and per broadcast, against users online. */
function loginsSpec(runs: Run[]): TopLevelSpec | null {
  const rows: Row[] = [];
  for (const run of runs) {
    const steps = (figures(run, 3)?.steps ?? []) as {
      online: number;
      msPerLogin: number;
      redisPerLogin: { total: number };
      logout?: { msPerLogout: number; redisPerLogout: { total: number } };
      broadcast?: { lastArrivalMs: number; redis: { total: number } };
    }[];
    for (const s of steps) {
      rows.push({ run: run.label, online: s.online, measure: 'ms per login', value: s.msPerLogin });
      rows.push({ run: run.label, online: s.online, measure: 'Redis commands per login', value: s.redisPerLogin.total });
      if (s.logout) {
        rows.push({ run: run.label, online: s.online, measure: 'ms per logout', value: s.logout.msPerLogout });
        rows.push({ run: run.label, online: s.online, measure: 'Redis commands per logout', value: s.logout.redisPerLogout.total });
      }
      if (s.broadcast && s.broadcast.lastArrivalMs >= 0) {
        rows.push({ run: run.label, online: s.online, measure: 'ms until all have a broadcast', value: s.broadcast.lastArrivalMs });
        rows.push({ run: run.label, online: s.online, measure: 'Redis commands per broadcast', value: s.broadcast.redis.total });
      }
    }
  }
  if (rows.length === 0) return null;
  return {
    ...base,
    title: 'Cost as users pile in (users logged in one after another)',
    data: { values: rows },
    facet: { field: 'measure', type: 'nominal', title: null, sort: ['ms per login', 'Redis commands per login', 'ms per logout', 'Redis commands per logout', 'ms until all have a broadcast', 'Redis commands per broadcast'] },
    columns: 2,
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 300,
      height: 180,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'online', type: 'quantitative', title: 'users online' },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'run', type: 'nominal' },
      },
    },
  } as TopLevelSpec;
}

/** Server RSS against connections (scenario 4's steps). */
function rssSpec(runs: Run[]): TopLevelSpec | null {
  const rows: Row[] = [];
  for (const run of runs) {
    const f = figures(run, 4);
    const idle = f ? [{ connections: 0, serverRssMiB: f.serverRssIdleMiB as number, redisUsedMiB: f.redisUsedIdleMiB as number }] : [];
    const curve = [...idle, ...((f?.curve ?? []) as { connections: number; serverRssMiB: number; redisUsedMiB: number }[])];
    for (const p of curve) {
      rows.push({ run: run.label, connections: p.connections, process: 'server RSS', MiB: p.serverRssMiB });
      rows.push({ run: run.label, connections: p.connections, process: 'Redis used memory', MiB: p.redisUsedMiB });
    }
  }
  if (rows.length === 0) return null;
  return {
    ...base,
    title: 'Memory against connections (half TCP sessions, half parked long-polls)',
    width: 480,
    height: 280,
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'connections', type: 'quantitative', title: 'connections (TCP + HTTP)' },
      y: { field: 'MiB', type: 'quantitative', title: 'MiB' },
      color: { field: 'process', type: 'nominal' },
      strokeDash: { field: 'run', type: 'nominal' },
    },
  } as TopLevelSpec;
}

/** Broadcast fan-out: time until the last recipient has it, against recipients. */
function fanoutSpec(runs: Run[]): TopLevelSpec | null {
  const rows: Row[] = [];
  for (const run of runs) {
    const points = (figures(run, 5)?.points ?? []) as { recipients: number; lastArrival: { p50Ms: number; maxMs: number } }[];
    for (const p of points) {
      rows.push({ run: run.label, recipients: p.recipients, statistic: 'median of repeats', ms: p.lastArrival.p50Ms });
      rows.push({ run: run.label, recipients: p.recipients, statistic: 'worst of repeats', ms: p.lastArrival.maxMs });
    }
  }
  if (rows.length === 0) return null;
  return {
    ...base,
    title: 'Broadcast: time until the last online user has it',
    width: 480,
    height: 280,
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'recipients', type: 'quantitative', title: 'online recipients' },
      y: { field: 'ms', type: 'quantitative', title: 'ms' },
      color: { field: 'statistic', type: 'nominal' },
      strokeDash: { field: 'run', type: 'nominal' },
    },
  } as TopLevelSpec;
}

/** Server RSS over time while one reader does not read. */
function slowReaderSpec(runs: Run[]): TopLevelSpec | null {
  const rows: Row[] = [];
  for (const run of runs) {
    const timeline = (figures(run, 6)?.timeline ?? []) as { t: number; serverRssMiB: number }[];
    for (const p of timeline) rows.push({ run: run.label, seconds: p.t, MiB: p.serverRssMiB });
  }
  if (rows.length === 0) return null;
  return {
    ...base,
    title: 'Server RSS while one reader never reads',
    width: 480,
    height: 240,
    data: { values: rows },
    mark: { type: 'line' },
    encoding: {
      x: { field: 'seconds', type: 'quantitative', title: 'seconds into the stall' },
      y: { field: 'MiB', type: 'quantitative', title: 'server RSS (MiB)' },
      color: { field: 'run', type: 'nominal' },
    },
  } as TopLevelSpec;
}

/**
 * Scenario 1 beside the peers (--peers): closed-loop msgs/s and RSS after
 * it, one bar per server; open-loop p50 and p99 against offered load, one
 * line per server.
 */
function peersSpec(runs: Run[], peers: PeerRun[]): TopLevelSpec | null {
  if (peers.length === 0) return null;
  const servers = [...runs.map((r) => ({ name: runs.length > 1 ? `this server, ${r.label}` : 'this server', r })), ...peers.map((p) => ({ name: p.label, r: p }))];
  const bars: Row[] = [];
  const lines: Row[] = [];
  for (const { name, r } of servers) {
    const f = figures(r, 1) as { closedLoop?: { deliveredPerSecond: number; serverRssMiB: number; redisRssMiB?: number }; openLoop?: { offered: number; latency: Record<string, number> }[] } | undefined;
    if (!f?.closedLoop) continue;
    bars.push({ server: name, measure: 'closed loop, msgs/s delivered', value: f.closedLoop.deliveredPerSecond, part: 'serving process(es)' });
    bars.push({ server: name, measure: 'RSS after the closed loop, MiB', value: f.closedLoop.serverRssMiB, part: 'serving process(es)' });
    if (typeof f.closedLoop.redisRssMiB === 'number') bars.push({ server: name, measure: 'RSS after the closed loop, MiB', value: f.closedLoop.redisRssMiB, part: 'Redis' });
    for (const p of f.openLoop ?? []) {
      for (const [label, key] of [['p50', 'p50Ms'], ['p99', 'p99Ms']]) lines.push({ server: name, offered: p.offered, percentile: label, ms: Math.max(0.01, p.latency[key]) });
    }
  }
  if (bars.length === 0) return null;
  const order = servers.map((s) => s.name);
  return {
    ...base,
    title: 'Scenario 1: this server beside real XMPP servers (same driver, same sitting)',
    hconcat: [
      {
        data: { values: bars },
        facet: { column: { field: 'measure', type: 'nominal', title: null, sort: ['closed loop, msgs/s delivered', 'RSS after the closed loop, MiB'] } },
        resolve: { scale: { x: 'independent' } },
        spec: {
          width: 220,
          height: 26 * servers.length,
          mark: 'bar',
          encoding: {
            y: { field: 'server', type: 'nominal', sort: order, title: null },
            x: { field: 'value', type: 'quantitative', title: null, stack: 'zero' },
            color: { field: 'part', type: 'nominal', title: null, scale: { domain: ['serving process(es)', 'Redis'], range: ['#4c78a8', '#bab0ac'] } },
            order: { field: 'part', sort: 'descending' },
          },
        },
      },
      {
        width: 280,
        height: 200,
        data: { values: lines },
        title: 'Open loop: latency against offered load',
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'offered', type: 'quantitative', scale: { type: 'log' }, title: 'offered msgs/s' },
          y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms, log)' },
          color: { field: 'server', type: 'nominal', sort: order },
          strokeDash: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99'] },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

export interface Plot {
  file: string;
  title: string;
  svg: string;
}

/** Every plot the runs have data for. */
export async function plots(runs: Run[], peers: PeerRun[] = []): Promise<Plot[]> {
  const specs: [string, string, TopLevelSpec | null][] = [
    ['latency.svg', 'Latency against offered load', latencySpec(runs)],
    ['peers.svg', 'Scenario 1 beside real XMPP servers', peersSpec(runs, peers)],
    ['logins.svg', 'Cost per login, logout and broadcast against users online', loginsSpec(runs)],
    ['rss.svg', 'Memory against connections', rssSpec(runs)],
    ['fanout.svg', 'Broadcast fan-out', fanoutSpec(runs)],
    ['slow-reader.svg', 'Server RSS while a reader never reads', slowReaderSpec(runs)],
  ];
  const out: Plot[] = [];
  for (const [file, title, spec] of specs) {
    if (spec) out.push({ file, title, svg: await renderSvg(spec) });
  }
  return out;
}
