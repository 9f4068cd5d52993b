import { driversFor, withEnvironment } from '../environment.js';
import { addVerification, emptyVerification, summarizeUs, type LatencySummary } from '../figures.js';
import { progress } from '../progress.js';
import { round } from '../redis-stats.js';
import { serverOf, type ScenarioContext, type ScenarioResult } from '../scenario.js';
import { PASSWORD, userNames } from '../users.js';
import { broadcastOnce, broadcastVerification, presenceSettled, type BroadcastFigures } from './logins.js';

export interface FanoutPoint {
  recipients: number;
  broadcasts: BroadcastFigures[];
  /** Over the repeats: time until the last recipient had it. */
  lastArrival: LatencySummary;
  replyMs: LatencySummary;
  missing: number;
}

/**
 * Scenario 5: one user broadcasts to N online TCP users; the time from the
 * command until the last recipient has it, at each size, a few times.
 */
export async function fanout(ctx: ScenarioContext): Promise<ScenarioResult> {
  const o = ctx.options;
  const started = Date.now();
  const deadline = started + o.fanoutDeadline * 1000;
  const largest = o.fanout[o.fanout.length - 1];
  const users = userNames('fo_', 0, largest + 1);
  const driverCount = driversFor(users.length, o.maxPerDriver);
  const notes: string[] = [];
  const points: FanoutPoint[] = [];
  const verification = emptyVerification();
  const result: ScenarioResult = {
    scenario: 5,
    title: 'Broadcast fan-out to N online TCP users',
    status: 'ok',
    settings: { sizes: o.fanout, repeats: o.fanoutRepeats, deadlineS: o.fanoutDeadline, drivers: driverCount },
    verification,
    notes,
    figures: { points },
    durationS: 0,
  };
  const left = () => Math.max(5000, deadline - Date.now());
  await withEnvironment({ ...serverOf(ctx), users, drivers: driverCount, timeoutSeconds: o.timeout }, async (env) => {
    const counts = new Array<number>(driverCount).fill(0);
    let online = 0;
    for (const size of o.fanout) {
      if (Date.now() >= deadline) {
        result.status = 'deadline';
        notes.push(`stopped before ${size} recipients: the ${o.fanoutDeadline} s deadline passed`);
        break;
      }
      progress(`  logging in up to ${size} recipients`);
      // The sender (fo_0) is driver 0's first session; users fill the drivers in order, 16 logins in flight.
      const wanted = users.slice(online, size + 1);
      for (let i = 0; i < wanted.length; ) {
        const d = Math.floor((online + i) / o.maxPerDriver);
        const chunk = wanted.slice(i, i + (o.maxPerDriver - ((online + i) % o.maxPerDriver)));
        const r = await env.drivers[d].call('login', { transport: 'tcp', users: chunk, password: PASSWORD, concurrency: i === 0 && online === 0 ? 1 : 16, deadlineMs: left() }, left() + 60_000);
        counts[d] += r.ok;
        if (r.ok < chunk.length) notes.push(`${chunk.length - r.ok} logins refused: ${JSON.stringify(r.refused)}`);
        i += chunk.length;
      }
      online = counts.reduce((a, b) => a + b, 0);
      // Every pair of online users made exactly one presence event, whatever the order of logins.
      if (!(await presenceSettled(env, (online * (online - 1)) / 2, Math.min(left(), 120_000)))) notes.push(`at ${size}: presence events still missing when the broadcasts began`);
      const broadcasts: BroadcastFigures[] = [];
      for (let k = 0; k < o.fanoutRepeats && Date.now() < deadline; k++) {
        const b = await broadcastOnce(env, counts, `bb.${ctx.runId}.fo${size}.${k}`, Math.min(left(), 120_000));
        addVerification(verification, broadcastVerification(b));
        broadcasts.push(b);
        await new Promise((r) => setTimeout(r, 200));
      }
      const point: FanoutPoint = {
        recipients: online - 1,
        broadcasts,
        lastArrival: summarizeUs(broadcasts.map((b) => b.lastArrivalMs * 1000)),
        replyMs: summarizeUs(broadcasts.map((b) => b.replyMs * 1000)),
        missing: broadcasts.reduce((a, b) => a + b.missing, 0),
      };
      points.push(point);
      if (point.missing) notes.push(`at ${online - 1} recipients: ${point.missing} broadcast deliveries missing`);
      progress(`  ${online - 1} recipients: last had it after ${point.lastArrival.p50Ms} ms (median of ${broadcasts.length}), max ${point.lastArrival.maxMs} ms`);
    }
  });
  result.figures = { points, headline: points.map((p) => ({ recipients: p.recipients, lastArrivalMedianMs: round(p.lastArrival.p50Ms, 3) })) };
  result.durationS = Math.round((Date.now() - started) / 1000);
  return result;
}
