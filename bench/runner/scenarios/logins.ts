import type { BroadcastResult, Verification } from '../../protocol.js';
import type { DriverProcess } from '../drivers.js';
import { driversFor, withEnvironment, type Environment } from '../environment.js';
import { addVerification, emptyVerification, mib, summarizeUs, type LatencySummary } from '../figures.js';
import { progress } from '../progress.js';
import { commandCalls, commandDelta, perOperation, round, type CommandDelta } from '../redis-stats.js';
import { serverOf, type ScenarioContext, type ScenarioResult } from '../scenario.js';
import { PASSWORD, userNames } from '../users.js';

export interface LoginStep {
  /** Users online after this step's logins. */
  online: number;
  logins: number;
  /** Wall time of the step's logins (one after another) divided by their number. */
  msPerLogin: number;
  /** The same, counted until every presence event of the step had reached the online users. */
  msPerLoginDelivered: number;
  reply: LatencySummary;
  redisPerLogin: CommandDelta;
  presenceDelivered: boolean;
  serverRssMiB: number;
  broadcast?: BroadcastFigures;
  logout?: { count: number; msPerLogout: number; reply: LatencySummary; redisPerLogout: CommandDelta };
}

export interface BroadcastFigures {
  /** Recipients that should have had it (every online TCP user but the sender). */
  expected: number;
  recipients: number;
  replyMs: number;
  /** From sending the command until the last recipient had it. */
  lastArrivalMs: number;
  p50ArrivalMs: number;
  missing: number;
  duplicates: number;
  redis: CommandDelta;
  replyText: string;
}

/**
 * One broadcast from the first TCP session of driver 0 to every other TCP
 * session of every driver; arrival times are compared across driver
 * processes on the machine's one clock (epoch microseconds).
 */
export async function broadcastOnce(env: Environment, counts: number[], tag: string, deadlineMs: number): Promise<BroadcastFigures> {
  const c0 = await commandCalls(env.admin);
  const answers: BroadcastResult[] = await Promise.all(
    env.drivers.map((d: DriverProcess, i) => d.call('broadcast', { sender: i === 0 ? 0 : -1, tag, deadlineMs, expected: counts[i] - (i === 0 ? 1 : 0) }, deadlineMs + 30_000)),
  );
  const c1 = await commandCalls(env.admin);
  const sent = answers[0].sentEpochUs;
  const arrivals = answers.flatMap((a) => a.arrivalsEpochUs.map((t) => t - sent)).sort((a, b) => a - b);
  return {
    expected: counts.reduce((a, b) => a + b, 0) - 1,
    recipients: arrivals.length,
    replyMs: round(answers[0].replyUs / 1000, 3),
    lastArrivalMs: arrivals.length ? round(arrivals[arrivals.length - 1] / 1000, 3) : -1,
    p50ArrivalMs: arrivals.length ? round(arrivals[Math.floor(arrivals.length / 2)] / 1000, 3) : -1,
    missing: answers.reduce((a, b) => a + b.missing, 0),
    duplicates: answers.reduce((a, b) => a + b.duplicates, 0),
    redis: commandDelta(c0, c1),
    replyText: answers[0].replyText,
  };
}

/** A broadcast's deliveries, in the books every scenario keeps. */
export function broadcastVerification(b: BroadcastFigures): Verification {
  return { ...emptyVerification(), sent: b.expected, delivered: b.recipients, lost: b.missing, duplicates: b.duplicates };
}

/** Waits until the drivers together have received at least `expected` presence events; false at the deadline. */
export async function presenceSettled(env: Environment, expected: number, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const stats = await env.driverStats();
    if (stats.reduce((a, s) => a + s.presence, 0) >= expected) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Scenario 3: users log in one after another, step by step up to N; after
 * each step, one broadcast and a few logouts (logged in again afterwards)
 * at that size. Presence makes every login and logout reach every online
 * user, so the driver also checks that those events all arrive.
 */
export async function logins(ctx: ScenarioContext): Promise<ScenarioResult> {
  const o = ctx.options;
  const started = Date.now();
  const deadline = started + o.loginDeadline * 1000;
  const users = userNames('lg_', 0, o.logins);
  const driverCount = driversFor(o.logins, o.maxPerDriver);
  const notes: string[] = [];
  const steps: LoginStep[] = [];
  const verification = emptyVerification();
  const result: ScenarioResult = {
    scenario: 3,
    title: 'Cost per login, logout and broadcast as users pile in (TCP, one after another)',
    status: 'ok',
    settings: { users: o.logins, step: o.loginStep, logoutSample: o.logoutSample, deadlineS: o.loginDeadline, drivers: driverCount },
    verification,
    notes,
    figures: { steps },
    durationS: 0,
  };
  const left = () => deadline - Date.now();
  await withEnvironment({ ...serverOf(ctx), users, drivers: driverCount, timeoutSeconds: o.timeout }, async (env) => {
    const counts = new Array<number>(driverCount).fill(0);
    let online = 0;
    let expectedPresence = 0;
    /** Logs users in one after another into driver `d`; every login tells everyone already online. */
    const loginInto = async (d: number, names: string[]) => {
      const r = await env.drivers[d].call('login', { transport: 'tcp', users: names, password: PASSWORD, concurrency: 1, deadlineMs: Math.max(1000, left()) }, Math.max(1000, left()) + 60_000);
      expectedPresence += r.ok * online + (r.ok * (r.ok - 1)) / 2;
      online += r.ok;
      counts[d] += r.ok;
      return r;
    };
    for (let from = 0; from < users.length; from += o.loginStep) {
      if (left() <= 0) {
        result.status = 'deadline';
        notes.push(`stopped at ${online} users online: the ${o.loginDeadline} s deadline passed`);
        break;
      }
      const band = users.slice(from, from + o.loginStep);
      const c0 = await commandCalls(env.admin);
      const t0 = Date.now();
      const latencies: number[] = [];
      let ok = 0;
      let deadlineHit = false;
      for (let i = 0; i < band.length; ) {
        const d = Math.floor((from + i) / o.maxPerDriver);
        const chunk = band.slice(i, i + (o.maxPerDriver - ((from + i) % o.maxPerDriver)));
        const r = await loginInto(d, chunk);
        ok += r.ok;
        latencies.push(...r.latenciesUs);
        if (r.ok < chunk.length) notes.push(`step to ${from + band.length}: ${chunk.length - r.ok} logins refused ${JSON.stringify(r.refused)}`);
        if (r.deadlineHit) deadlineHit = true;
        i += chunk.length;
      }
      const loginMs = Date.now() - t0;
      const delivered = await presenceSettled(env, expectedPresence, Math.max(1000, Math.min(left(), 120_000)));
      const settledMs = Date.now() - t0;
      const c1 = await commandCalls(env.admin);
      const step: LoginStep = {
        online,
        logins: ok,
        msPerLogin: round(loginMs / Math.max(1, ok), 3),
        msPerLoginDelivered: round(settledMs / Math.max(1, ok), 3),
        reply: summarizeUs(latencies),
        redisPerLogin: perOperation(commandDelta(c0, c1), ok),
        presenceDelivered: delivered,
        serverRssMiB: mib(env.serverSample().rssBytes),
      };
      steps.push(step);
      progress(`  ${online} online: ${step.msPerLogin} ms/login (reply p99 ${step.reply.p99Ms} ms), ${step.redisPerLogin.total} Redis commands/login, server RSS ${step.serverRssMiB} MiB`);
      if (!delivered) notes.push(`at ${online} online: presence events still missing after waiting (${o.loginDeadline} s budget)`);
      if (deadlineHit) {
        result.status = 'deadline';
        notes.push(`stopped at ${online} users online: the ${o.loginDeadline} s deadline passed during a step`);
        break;
      }
      if (online >= 2 && left() > 0) {
        step.broadcast = await broadcastOnce(env, counts, `bb.${ctx.runId}.lg${online}`, Math.max(5000, Math.min(left(), 120_000)));
        addVerification(verification, broadcastVerification(step.broadcast));
        progress(`    broadcast: reply ${step.broadcast.replyMs} ms, last of ${step.broadcast.recipients} recipients at ${step.broadcast.lastArrivalMs} ms, ${step.broadcast.redis.total} Redis commands`);
      }
      if (o.logoutSample > 0 && online > o.logoutSample + 1 && left() > 0) {
        const d = counts.findLastIndex((c) => c > o.logoutSample);
        const l0 = await commandCalls(env.admin);
        const t1 = Date.now();
        const out = await env.drivers[d].call('logout', { count: o.logoutSample, deadlineMs: Math.max(5000, Math.min(left(), 120_000)) }, Math.max(5000, Math.min(left(), 120_000)) + 30_000);
        for (let k = 0; k < out.users.length; k++) {
          online--;
          counts[d]--;
          expectedPresence += online;
        }
        const logoutMs = Date.now() - t1;
        await presenceSettled(env, expectedPresence, Math.max(1000, Math.min(left(), 60_000)));
        const l1 = await commandCalls(env.admin);
        step.logout = {
          count: out.users.length,
          msPerLogout: round(logoutMs / Math.max(1, out.users.length), 3),
          reply: summarizeUs(out.latenciesUs),
          redisPerLogout: perOperation(commandDelta(l0, l1), out.users.length),
        };
        const back = await loginInto(d, out.users);
        if (back.ok < out.users.length) notes.push(`at ${online} online: ${out.users.length - back.ok} users could not log in again`);
        await presenceSettled(env, expectedPresence, Math.max(1000, Math.min(left(), 60_000)));
      }
    }
  });
  result.durationS = Math.round((Date.now() - started) / 1000);
  return result;
}
