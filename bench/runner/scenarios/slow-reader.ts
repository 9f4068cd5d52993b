import type { SlowReaderResult } from '../../protocol.js';
import { withEnvironment } from '../environment.js';
import { addVerification, emptyVerification, mib, summarize, troubles } from '../figures.js';
import { progress } from '../progress.js';
import { round } from '../redis-stats.js';
import { serverOf, type ScenarioContext, type ScenarioResult } from '../scenario.js';
import { PASSWORD, userNames } from '../users.js';

/**
 * Scenario 6: one TCP user stops reading while ten others flood it with
 * long messages and the rest talk among themselves at an offered rate. The
 * server's RSS is sampled all along; the others' latency is compared with a
 * control phase without the stuck reader; afterwards the reader reads again
 * and must get every message the server accepted for it.
 */
export async function slowReader(ctx: ScenarioContext): Promise<ScenarioResult> {
  const o = ctx.options;
  const started = Date.now();
  const flooders = 10;
  const users = ['sr_reader', ...userNames('sr_f', 0, flooders), ...userNames('sr_o', 0, o.slowOthers)];
  const verification = emptyVerification();
  const notes: string[] = [];
  const result: ScenarioResult = {
    scenario: 6,
    title: 'A reader that never reads',
    status: 'ok',
    settings: { stallS: o.slowDuration, floodRate: o.slowFloodRate, floodBodyBytes: o.slowBodyBytes, flooders, others: o.slowOthers, othersRate: o.slowRate, othersBodyBytes: o.bodyBytes },
    verification,
    notes,
    figures: {},
    durationS: 0,
  };
  await withEnvironment({ ...serverOf(ctx), users, drivers: 1, timeoutSeconds: o.timeout }, async (env) => {
    const [driver] = env.drivers;
    const login = await driver.call('login', { transport: 'tcp', users, password: PASSWORD, concurrency: 8, deadlineMs: 60_000, parseAll: true }, 90_000);
    if (login.ok < users.length) throw new Error(`only ${login.ok} of ${users.length} users logged in: ${JSON.stringify(login.refused)}`);
    const othersFrom = 1 + flooders;
    const othersTo = othersFrom + o.slowOthers;
    const controlMs = Math.max(300, Math.round((o.slowDuration * 1000) / 2));
    progress(`  control: ${o.slowOthers} users at ${o.slowRate} msgs/s for ${controlMs / 1000} s, everyone reading`);
    const control = await driver.call('openLoop', { transport: 'tcp', from: othersFrom, to: othersTo, rate: o.slowRate, durationMs: controlMs, drainMs: 10_000, bodyBytes: o.bodyBytes, maxInFlight: 2000 }, controlMs * 2 + 30_000);
    addVerification(verification, control.verification);
    const before = env.serverSample();

    progress(`  stall: the reader stops reading for ${o.slowDuration} s while ${flooders} users send it ${o.slowFloodRate} msgs/s of ${o.slowBodyBytes} characters`);
    const timeline: { t: number; serverRssMiB: number }[] = [];
    const t0 = Date.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        timeline.push({ t: round((Date.now() - t0) / 1000, 1), serverRssMiB: mib(env.serverSample().rssBytes) });
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    let stalled: SlowReaderResult;
    try {
      stalled = await driver.call(
        'slowReader',
        {
          reader: 0, floodFrom: 1, floodTo: 1 + flooders, floodRate: o.slowFloodRate, floodBodyBytes: o.slowBodyBytes, durationMs: o.slowDuration * 1000,
          othersFrom, othersTo, othersRate: o.slowRate, othersBodyBytes: o.bodyBytes, catchUpMs: 60_000,
        },
        o.slowDuration * 3000 + 150_000,
      );
    } finally {
      sampling = false;
      await sampler;
    }
    addVerification(verification, stalled.others.verification);
    addVerification(verification, stalled.flood);
    const peak = Math.max(...timeline.map((p) => p.serverRssMiB));
    const controlLatency = summarize(control.latency);
    const duringLatency = summarize(stalled.others.latency);
    if (stalled.readerCutOff) {
      const when = stalled.cutOffSeenOnResume ? 'during the stall (seen when it read again: an unread socket does not see the close)' : `${round(stalled.cutOffAfterMs / 1000, 1)} s into the stall`;
      notes.push(`the server closed the reader's connection ${when}${stalled.resumed ? '; the reader came back with resume' : ''}`);
    }
    if (stalled.catchUpMs < 0) notes.push('the reader never got every message the server had accepted for it');
    result.figures = {
      serverRssBeforeMiB: mib(before.rssBytes),
      serverRssPeakMiB: peak,
      serverRssGrowthMiB: round(peak - mib(before.rssBytes), 1),
      timeline,
      flood: { ...stalled.flood, troubles: troubles(stalled.flood) },
      readerCutOff: stalled.readerCutOff,
      cutOffAfterS: stalled.readerCutOff && !stalled.cutOffSeenOnResume ? round(stalled.cutOffAfterMs / 1000, 2) : null,
      resumed: stalled.resumed,
      catchUpS: stalled.catchUpMs >= 0 ? round(stalled.catchUpMs / 1000, 2) : null,
      othersControl: controlLatency,
      othersDuringStall: duringLatency,
      othersP99Ratio: controlLatency.p99Ms > 0 ? round(duringLatency.p99Ms / controlLatency.p99Ms) : null,
      othersDeliveredPerSecond: round((stalled.others.measuredDeliveries * 1000) / stalled.others.measuredMs, 1),
    };
    progress(`  RSS ${mib(before.rssBytes)} -> peak ${peak} MiB; others p99 ${controlLatency.p99Ms} -> ${duringLatency.p99Ms} ms; reader ${stalled.readerCutOff ? 'cut off' : 'kept'}, caught up ${stalled.catchUpMs >= 0 ? 'yes' : 'no'}`);
  });
  result.durationS = Math.round((Date.now() - started) / 1000);
  return result;
}
