import { PEER_NAMES, type PeerName } from './peers.js';

/** Everything a bench run can be told, with the defaults of a full run. */
export interface Options {
  scenarios: number[];
  serverRoot: string;
  baseline: string;
  /** The node binary the server runs on (the load drivers stay on the bench's own). */
  node: string;
  /** The same for the baseline run: with --baseline . the two runs differ only by runtime. */
  baselineNode: string;
  out: string;
  build: boolean;
  smoke: boolean;
  /** Only write summary.md and the plots again from this results directory's results.json. */
  render: string;
  /** Real XMPP servers that scenario 1 also runs against, in the same sitting (bench/runner/peers.ts). */
  peers: PeerName[];
  /** Write a CPU profile of every server process (node --cpu-prof) under <out>/profiles. */
  profile: boolean;
  /** Server inactivity timeout (s): long, so nobody is logged out mid-run. */
  timeout: number;
  maxPerDriver: number;
  // 1 and 2: direct messages
  users: number;
  window: number;
  duration: number;
  warmup: number;
  rate: number;
  rates: number[];
  rateDuration: number;
  bodyBytes: number;
  // 3: logins as users pile in
  logins: number;
  loginStep: number;
  logoutSample: number;
  loginDeadline: number;
  // 4: capacity
  capacityTcp: number;
  capacityHttp: number;
  capacitySteps: number;
  capacityDeadline: number;
  probes: number;
  // 5: broadcast fan-out
  fanout: number[];
  fanoutRepeats: number;
  fanoutDeadline: number;
  // 6: a reader that never reads
  slowDuration: number;
  slowFloodRate: number;
  slowBodyBytes: number;
  slowOthers: number;
  slowRate: number;
  // 7: the Redis ceiling
  ceilingRequests: number;
  ceilingClients: number;
  ceilingPipeline: number;
}

interface Flag {
  flag: string;
  key: keyof Options;
  kind: 'int' | 'seconds' | 'list' | 'text' | 'bool' | 'names';
  /** The names a `names` flag takes. */
  choices?: readonly string[];
  help: string;
  /** What the value is called in the usage, when not a directory (text) or a number. */
  value?: string;
}

export const SCENARIOS: Record<number, string> = {
  1: 'direct messages over TCP (closed and open loop)',
  2: 'direct messages over HTTP long-poll (closed and open loop)',
  3: 'cost per login, logout and broadcast as users pile in',
  4: 'capacity: TCP sessions and parked long-polls on one replica',
  5: 'broadcast fan-out to N online TCP users',
  6: 'a reader that never reads',
  7: "the ceiling: Redis's own rate for the per-message work",
};

const flags: Flag[] = [
  { flag: '--scenarios', key: 'scenarios', kind: 'list', help: 'which scenarios to run, e.g. 1,3 (all: 1-7)' },
  { flag: '--server-root', key: 'serverRoot', kind: 'text', help: 'checkout of the server to build and measure (this repository)' },
  { flag: '--baseline', key: 'baseline', kind: 'text', help: 'a second checkout, run right after with the same scenarios and compared side by side' },
  { flag: '--node', key: 'node', kind: 'text', value: 'PATH', help: "node binary the server runs on (the bench's own); the drivers always run on the bench's own" },
  { flag: '--baseline-node', key: 'baselineNode', kind: 'text', value: 'PATH', help: "node binary the baseline's server runs on (the bench's own); with --baseline . only the runtime differs" },
  { flag: '--out', key: 'out', kind: 'text', help: 'results directory (bench/results/<date>-<short commit>)' },
  { flag: '--no-build', key: 'build', kind: 'bool', help: 'run the dist/ already built instead of running npm run build' },
  { flag: '--smoke', key: 'smoke', kind: 'bool', help: 'tiny sizes: checks that the bench works, in seconds; its figures mean nothing' },
  { flag: '--render', key: 'render', kind: 'text', help: 'write summary.md and the plots again from DIR/results.json, running nothing' },
  { flag: '--peers', key: 'peers', kind: 'names', choices: PEER_NAMES, value: 'A,B', help: `also run scenario 1 against real XMPP servers, e.g. ejabberd,prosody (Debian's; installed with apt-get when missing)` },
  { flag: '--profile', key: 'profile', kind: 'bool', help: 'write a CPU profile of each server process to <out>/profiles (node --cpu-prof; open in Chrome DevTools or speedscope)' },
  { flag: '--timeout', key: 'timeout', kind: 'int', help: 'server inactivity timeout in seconds (86400)' },
  { flag: '--max-per-driver', key: 'maxPerDriver', kind: 'int', help: 'connections per driver process; more drivers are started beyond it (8000)' },
  { flag: '--users', key: 'users', kind: 'int', help: '1, 2: users sending to each other (100)' },
  { flag: '--window', key: 'window', kind: 'int', help: '1, 2: messages each user keeps in flight, closed loop (8)' },
  { flag: '--duration', key: 'duration', kind: 'seconds', help: '1, 2: seconds measured, closed loop (10)' },
  { flag: '--warmup', key: 'warmup', kind: 'seconds', help: '1, 2: seconds of load before measuring, closed loop (2)' },
  { flag: '--rate', key: 'rate', kind: 'int', help: '1, 2: the headline offered rate, msgs/s, open loop (1000)' },
  { flag: '--rates', key: 'rates', kind: 'list', help: '1, 2: offered rates for the latency curve (250,500,1000,2000,4000,8000)' },
  { flag: '--rate-duration', key: 'rateDuration', kind: 'seconds', help: '1, 2: seconds per offered rate (5)' },
  { flag: '--body-bytes', key: 'bodyBytes', kind: 'int', help: '1, 2, 6: message text length (64)' },
  { flag: '--logins', key: 'logins', kind: 'int', help: '3: users logged in one after another (4000)' },
  { flag: '--login-step', key: 'loginStep', kind: 'int', help: '3: users per step of the curve (250)' },
  { flag: '--logout-sample', key: 'logoutSample', kind: 'int', help: '3: logouts measured at each step (then logged in again) (10)' },
  { flag: '--login-deadline', key: 'loginDeadline', kind: 'int', help: '3: seconds before it stops adding users and reports (600)' },
  { flag: '--capacity-tcp', key: 'capacityTcp', kind: 'int', help: '4: TCP sessions (4000)' },
  { flag: '--capacity-http', key: 'capacityHttp', kind: 'int', help: '4: parked long-polls, one per HTTP session (4000)' },
  { flag: '--capacity-steps', key: 'capacitySteps', kind: 'int', help: '4: steps of the RSS curve (8)' },
  { flag: '--capacity-deadline', key: 'capacityDeadline', kind: 'int', help: '4: seconds for connecting before it measures what it has (420)' },
  { flag: '--probes', key: 'probes', kind: 'int', help: '4: probe messages for the command latency (200)' },
  { flag: '--fanout', key: 'fanout', kind: 'list', help: '5: online recipients per broadcast (100,1000,2000)' },
  { flag: '--fanout-repeats', key: 'fanoutRepeats', kind: 'int', help: '5: broadcasts per size (5)' },
  { flag: '--fanout-deadline', key: 'fanoutDeadline', kind: 'int', help: '5: seconds before it stops growing and reports (300)' },
  { flag: '--slow-duration', key: 'slowDuration', kind: 'seconds', help: '6: seconds the reader does not read (15)' },
  { flag: '--slow-flood-rate', key: 'slowFloodRate', kind: 'int', help: '6: msgs/s sent to the reader (500)' },
  { flag: '--slow-body-bytes', key: 'slowBodyBytes', kind: 'int', help: '6: text length of those messages (900)' },
  { flag: '--slow-others', key: 'slowOthers', kind: 'int', help: '6: other users talking meanwhile (40)' },
  { flag: '--slow-rate', key: 'slowRate', kind: 'int', help: "6: the others' offered rate, msgs/s (500)" },
  { flag: '--ceiling-requests', key: 'ceilingRequests', kind: 'int', help: '7: requests per redis-benchmark run (200000)' },
  { flag: '--ceiling-clients', key: 'ceilingClients', kind: 'int', help: '7: redis-benchmark connections (50)' },
  { flag: '--ceiling-pipeline', key: 'ceilingPipeline', kind: 'int', help: '7: pipeline depth of the pipelined runs (16)' },
];

export function defaults(repoRoot: string): Options {
  return {
    scenarios: [1, 2, 3, 4, 5, 6, 7],
    serverRoot: repoRoot,
    baseline: '',
    node: process.execPath,
    baselineNode: process.execPath,
    out: '',
    build: true,
    smoke: false,
    render: '',
    peers: [],
    profile: false,
    timeout: 86400,
    maxPerDriver: 8000,
    users: 100,
    window: 8,
    duration: 10,
    warmup: 2,
    rate: 1000,
    rates: [250, 500, 1000, 2000, 4000, 8000],
    rateDuration: 5,
    bodyBytes: 64,
    logins: 4000,
    loginStep: 250,
    logoutSample: 10,
    loginDeadline: 600,
    capacityTcp: 4000,
    capacityHttp: 4000,
    capacitySteps: 8,
    capacityDeadline: 420,
    probes: 200,
    fanout: [100, 1000, 2000],
    fanoutRepeats: 5,
    fanoutDeadline: 300,
    slowDuration: 15,
    slowFloodRate: 500,
    slowBodyBytes: 900,
    slowOthers: 40,
    slowRate: 500,
    ceilingRequests: 200_000,
    ceilingClients: 50,
    ceilingPipeline: 16,
  };
}

/** Sizes for the smoke run in the test suite: every code path, a few seconds. */
const smokeSizes: Partial<Options> = {
  users: 4,
  window: 2,
  duration: 0.5,
  warmup: 0,
  rate: 40,
  rates: [40],
  rateDuration: 0.5,
  logins: 6,
  loginStep: 3,
  logoutSample: 1,
  loginDeadline: 30,
  capacityTcp: 4,
  capacityHttp: 4,
  capacitySteps: 2,
  capacityDeadline: 30,
  probes: 5,
  fanout: [3],
  fanoutRepeats: 1,
  fanoutDeadline: 30,
  slowDuration: 0.6,
  slowFloodRate: 20,
  slowBodyBytes: 100,
  slowOthers: 3,
  slowRate: 20,
  ceilingRequests: 500,
  ceilingClients: 2,
  ceilingPipeline: 4,
};

export class UsageError extends Error {}

export function parseOptions(argv: string[], repoRoot: string): Options | 'help' {
  const options = defaults(repoRoot);
  const given = new Set<keyof Options>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return 'help';
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const flag = flags.find((f) => f.flag === name);
    if (!flag) throw new UsageError(`unknown argument ${arg}`);
    given.add(flag.key);
    if (flag.kind === 'bool') {
      (options as unknown as Record<string, unknown>)[flag.key] = flag.key === 'build' ? false : true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    let parsed: unknown;
    if (flag.kind === 'text') parsed = value;
    else if (flag.kind === 'names') {
      const items = value.split(',').map((v) => v.trim().toLowerCase()).filter(Boolean);
      const unknown = items.filter((v) => !flag.choices!.includes(v));
      if (items.length === 0 || unknown.length) throw new UsageError(`${name} takes a comma-separated list of ${flag.choices!.join(', ')}, not ${value}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`);
      parsed = [...new Set(items)];
    }
    else if (flag.kind === 'int') {
      if (!/^\d+$/.test(value)) throw new UsageError(`${name} takes a non-negative integer, not ${value}`);
      parsed = Number(value);
    } else if (flag.kind === 'seconds') {
      if (!/^\d+(\.\d+)?$/.test(value)) throw new UsageError(`${name} takes a number of seconds, not ${value}`);
      parsed = Number(value);
    } else {
      const items = value.split(',').filter(Boolean);
      if (items.length === 0 || items.some((v) => !/^\d+$/.test(v))) throw new UsageError(`${name} takes a comma-separated list of integers, not ${value}`);
      parsed = items.map(Number);
    }
    (options as unknown as Record<string, unknown>)[flag.key] = parsed;
  }
  if (options.smoke) {
    for (const [key, value] of Object.entries(smokeSizes)) {
      if (!given.has(key as keyof Options)) (options as unknown as Record<string, unknown>)[key] = value;
    }
  }
  if (given.has('baselineNode') && !options.baseline) throw new UsageError('--baseline-node needs --baseline (the same checkout, --baseline ., to compare runtimes only)');
  if (options.scenarios.some((s) => !SCENARIOS[s])) throw new UsageError(`--scenarios takes numbers 1-7`);
  if (options.peers.length && !options.scenarios.includes(1)) throw new UsageError('--peers compares scenario 1 with the peers: --scenarios must include 1');
  if (options.peers.length && options.render) throw new UsageError('--render runs nothing: --peers has nothing to do with it');
  if (options.users < 2 || options.slowOthers < 2) throw new UsageError('--users and --slow-others need at least 2');
  if (options.rates.some((r) => r <= 0) || options.rate <= 0) throw new UsageError('rates must be positive');
  if (options.loginStep < 1 || options.capacitySteps < 1 || options.maxPerDriver < 10) throw new UsageError('--login-step, --capacity-steps must be positive, --max-per-driver at least 10');
  if (!options.rates.includes(options.rate)) options.rates = [...options.rates, options.rate];
  options.rates.sort((a, b) => a - b);
  options.fanout.sort((a, b) => a - b);
  return options;
}

export function usage(): string {
  return [
    'Usage: npm run bench -- [options]',
    '',
    'Starts its own redis-server and the built server (npm run build, then node dist/entries/node.js)',
    'on free loopback ports for each scenario, drives them from separate driver processes over the public',
    'TCP and HTTP protocols, and writes results.json, summary.md and SVG plots under bench/results/.',
    '',
    'Scenarios:',
    ...Object.entries(SCENARIOS).map(([n, what]) => `  ${n}  ${what}`),
    '',
    'Options:',
    ...flags.map((f) => `  ${`${f.flag}${f.kind === 'bool' ? '' : f.kind === 'list' ? ' A,B' : f.kind === 'int' ? ' N' : f.kind === 'seconds' ? ' S' : ` ${f.value ?? 'DIR'}`}`.padEnd(26)} ${f.help}`),
    '  --help                     this text',
    '',
    'With --peers, scenario 1 then runs against each peer too (Debian\'s ejabberd, Prosody), through the same driver',
    'with its own minimal XMPP client, and the summary gives the ratios; see bench/README.md, "Beside real XMPP servers".',
  ].join('\n');
}
