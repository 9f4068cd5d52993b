import type { LoadResult, Transport } from '../../protocol.js';
import { withEnvironment, type LoadEnvironment } from '../environment.js';
import { addVerification, emptyVerification, summarize, troubles, type LatencySummary } from '../figures.js';
import type { Options } from '../options.js';
import { peerTitle, withPeer, type PeerInstall } from '../peers.js';
import { cpuShare, machineSample, sample } from '../processes.js';
import { progress } from '../progress.js';
import { round } from '../redis-stats.js';
import { serverOf, type ScenarioContext, type ScenarioResult } from '../scenario.js';
import { PASSWORD, userNames } from '../users.js';

export interface PhaseFigures {
  /** Delivered messages per second inside the measuring window. */
  deliveredPerSecond: number;
  latency: LatencySummary;
  /** Command to reply (ours); empty over XMPP, where a message has no reply. */
  replyLatency: LatencySummary;
  /**
   * Cores used over the phase (from /proc): the server (for a peer, its
   * daemon and every process under it), Redis (null for a peer: it has
   * none), the driver, and every other process on the machine meanwhile.
   */
  cpu: { server: number; redis: number | null; driver: number; otherProcesses: number };
  /** RSS of the serving process(es) at the end of the phase: our server's node process; a peer's daemon and every process under it. */
  serverRssMiB: number;
  /** Redis's RSS at the end of the phase (ours only: it holds every message). */
  redisRssMiB?: number;
  troubles: string[];
  driverLagged?: number;
}

export interface OpenLoopPoint extends PhaseFigures {
  offered: number;
  /** Delivered/offered below 0.9, or a p99 over a second, or the drain deadline passed. */
  saturated: boolean;
}

/** Runs one load phase while sampling the server's and Redis's CPU. */
async function measured(env: LoadEnvironment, run: () => Promise<LoadResult>): Promise<{ result: LoadResult; figures: PhaseFigures }> {
  const s0 = env.serverSample();
  const r0 = env.redisSample();
  const d0 = env.drivers.map((d) => sample(d.pid));
  const m0 = machineSample();
  const result = await run();
  const s1 = env.serverSample();
  const r1 = env.redisSample();
  const d1 = env.drivers.map((d) => sample(d.pid));
  const m1 = machineSample();
  const server = cpuShare(s0, s1);
  const redis = r0 && r1 ? cpuShare(r0, r1) : null;
  const driver = d0.reduce((a, d, i) => a + cpuShare(d, d1[i]), 0);
  return {
    result,
    figures: {
      deliveredPerSecond: round((result.measuredDeliveries * 1000) / result.measuredMs, 1),
      latency: summarize(result.latency),
      replyLatency: summarize(result.replyLatency),
      cpu: { server: round(server), redis: redis === null ? null : round(redis), driver: round(driver), otherProcesses: round(Math.max(0, cpuShare(m0, m1) - server - (redis ?? 0) - driver)) },
      serverRssMiB: round(s1.rssBytes / 1024 / 1024, 1),
      ...(r1 ? { redisRssMiB: round(r1.rssBytes / 1024 / 1024, 1) } : {}),
      troubles: troubles(result.verification),
      ...(result.driverLagged !== undefined ? { driverLagged: result.driverLagged } : {}),
    },
  };
}

/**
 * The load of scenarios 1 and 2 (and of scenario 1 against a peer): U users
 * log in, a closed loop, then the open-loop rates. Fills `result`.
 */
async function directLoad(env: LoadEnvironment, transport: Transport, users: string[], o: Options, result: ScenarioResult): Promise<void> {
  const verification = result.verification!;
  const notes = result.notes;
  const [driver] = env.drivers;
  const login = await driver.call('login', { transport, users, password: PASSWORD, concurrency: 16, deadlineMs: 120_000, poll: true, pollWait: 30 }, 150_000);
  if (login.ok < 2) throw new Error(`only ${login.ok} of ${users.length} users logged in: ${JSON.stringify(login.refused)}${login.firstError ? ` (${login.firstError})` : ''}`);
  if (login.ok < users.length) notes.push(`${users.length - login.ok} of ${users.length} logins refused: ${JSON.stringify(login.refused)}${login.firstError ? ` (first: ${login.firstError})` : ''}`);

  progress(`  closed loop: ${login.ok} users x ${o.window} in flight, ${o.warmup} s warm-up + ${o.duration} s`);
  const closedMs = (o.warmup + o.duration) * 1000;
  const closed = await measured(env, () =>
    driver.call('closedLoop', { transport, window: o.window, warmupMs: o.warmup * 1000, durationMs: o.duration * 1000, drainMs: 15_000, bodyBytes: o.bodyBytes }, closedMs + 60_000),
  );
  addVerification(verification, closed.result.verification);
  if (closed.result.deadlineHit) notes.push('closed loop: some messages were still undelivered 15 s after the load stopped (counted lost)');
  progress(`  closed loop: ${closed.figures.deliveredPerSecond} msgs/s delivered, p99 ${closed.figures.latency.p99Ms} ms`);

  const openLoop: OpenLoopPoint[] = [];
  for (const rate of o.rates) {
    progress(`  open loop: ${rate} msgs/s offered for ${o.rateDuration} s`);
    const open = await measured(env, () =>
      driver.call('openLoop', { transport, rate, durationMs: o.rateDuration * 1000, drainMs: 15_000, bodyBytes: o.bodyBytes, maxInFlight: 4000 }, o.rateDuration * 2000 + 60_000),
    );
    addVerification(verification, open.result.verification);
    const saturated = open.figures.deliveredPerSecond < 0.9 * rate || open.figures.latency.p99Ms > 1000 || open.result.deadlineHit;
    openLoop.push({ offered: rate, saturated, ...open.figures });
    progress(`    delivered ${open.figures.deliveredPerSecond} msgs/s, p50 ${open.figures.latency.p50Ms} ms, p99 ${open.figures.latency.p99Ms} ms${saturated ? ' (saturated)' : ''}`);
    if (saturated && rate >= o.rate && rate < o.rates[o.rates.length - 1]) {
      notes.push(`open loop stopped at ${rate} msgs/s offered: saturated (higher rates not tried)`);
      break;
    }
  }
  const headline = openLoop.find((p) => p.offered === o.rate);
  result.figures = {
    sessions: login.ok,
    loginWallMs: round(login.wallMs, 1),
    closedLoop: closed.figures,
    openLoop,
    headline: {
      closedLoopMsgsPerSecond: closed.figures.deliveredPerSecond,
      openLoopRate: o.rate,
      openLoopLatency: headline?.latency ?? null,
      serverRssAfterClosedLoopMiB: closed.figures.serverRssMiB,
      serverRssAfterLoadMiB: openLoop.at(-1)?.serverRssMiB ?? closed.figures.serverRssMiB,
    },
  };
  const stats = await env.driverStats();
  const closedByServer = stats.reduce((a, s) => a + s.closedByServer, 0);
  if (closedByServer) notes.push(`the server closed ${closedByServer} driver connections`);
}

function newResult(scenario: number, title: string, o: Options, extra: Record<string, unknown> = {}): ScenarioResult {
  return {
    scenario,
    title,
    status: 'ok',
    settings: { users: o.users, window: o.window, durationS: o.duration, warmupS: o.warmup, rates: o.rates, rateDurationS: o.rateDuration, bodyBytes: o.bodyBytes, ...extra },
    verification: emptyVerification(),
    notes: [],
    figures: {},
    durationS: 0,
  };
}

/** Scenarios 1 and 2: direct messages between U users, closed loop then open loop, over one transport. */
export async function directMessages(ctx: ScenarioContext, transport: 'tcp' | 'http'): Promise<ScenarioResult> {
  const o = ctx.options;
  const scenario = transport === 'tcp' ? 1 : 2;
  const started = Date.now();
  const users = userNames(transport === 'tcp' ? 'dm_t' : 'dm_h', 0, o.users);
  const result = newResult(scenario, `Direct messages over ${transport === 'tcp' ? 'TCP' : 'HTTP long-poll'}`, o);
  await withEnvironment({ ...serverOf(ctx), users, drivers: 1, timeoutSeconds: o.timeout }, async (env) => {
    await directLoad(env, transport, users, o, result);
  });
  result.durationS = Math.round((Date.now() - started) / 1000);
  return result;
}

/**
 * Scenario 1 against a peer XMPP server (`--peers`): the same users, the
 * same closed and open loops through the same driver, over XMPP (a
 * `<message type='chat'>` to the recipient's bare JID). Figures that come
 * from starting the peer (how long it took, how its users were made, its
 * processes' RSS by name) go beside the load's.
 */
export async function peerDirectMessages(ctx: ScenarioContext, install: PeerInstall, ran: { command: string; config: string }): Promise<ScenarioResult> {
  const o = ctx.options;
  const started = Date.now();
  const users = userNames('dm_t', 0, o.users);
  const result = newResult(1, `Direct messages over XMPP, ${peerTitle(install)}`, o, { transport: 'xmpp' });
  await withPeer(install.peer, users, PASSWORD, ctx.runId, async (env) => {
    ran.command = env.server.command;
    ran.config = env.server.config;
    const idle = env.server.sample();
    const idleProcesses = env.server.processes();
    await directLoad(env, 'xmpp', users, o, result);
    result.figures.peer = {
      startS: env.server.startS,
      usersCreatedS: env.server.usersS,
      usersHow: env.server.usersHow,
      rssIdleMiB: round(idle.rssBytes / 1024 / 1024, 1),
      processesIdleMiB: idleProcesses,
      processesAfterLoadMiB: env.server.processes(),
    };
  });
  result.durationS = Math.round((Date.now() - started) / 1000);
  return result;
}
