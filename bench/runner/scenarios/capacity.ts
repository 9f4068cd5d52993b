import type { LoginResult } from '../../protocol.js';
import { driversFor, withEnvironment, type Environment } from '../environment.js';
import { mib, summarize } from '../figures.js';
import { progress } from '../progress.js';
import { memory, round } from '../redis-stats.js';
import { serverOf, type ScenarioContext, type ScenarioResult } from '../scenario.js';
import { PASSWORD, userNames } from '../users.js';

export interface CapacityPoint {
  tcp: number;
  http: number;
  connections: number;
  serverRssMiB: number;
  redisUsedMiB: number;
  elapsedS: number;
}

/** Waits until the drivers' event counts stop moving for `quietMs` (the server has finished fanning out), or the deadline. */
async function quiet(env: Environment, quietMs: number, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  let last = -1;
  let since = Date.now();
  for (;;) {
    const stats = await env.driverStats();
    const events = stats.reduce((a, s) => a + s.events, 0);
    if (events !== last) {
      last = events;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Scenario 4: N TCP sessions and N parked long-polls on one replica, added
 * in steps (RSS after each step gives the curve); then RSS loaded, RSS per
 * connection, Redis memory, and a probe user's command latency with
 * everything connected. Two probe users are the first TCP sessions of
 * driver 0.
 */
export async function capacity(ctx: ScenarioContext): Promise<ScenarioResult> {
  const o = ctx.options;
  const started = Date.now();
  const deadline = started + o.capacityDeadline * 1000;
  const probes = userNames('cp_probe', 0, 2);
  const tcpUsers = userNames('cp_t', 0, o.capacityTcp);
  const httpUsers = userNames('cp_h', 0, o.capacityHttp);
  const total = tcpUsers.length + httpUsers.length + probes.length;
  const driverCount = driversFor(total, o.maxPerDriver);
  const notes: string[] = [];
  const curve: CapacityPoint[] = [];
  const result: ScenarioResult = {
    scenario: 4,
    title: 'Capacity: TCP sessions and parked long-polls on one replica',
    status: 'ok',
    settings: { tcp: o.capacityTcp, http: o.capacityHttp, steps: o.capacitySteps, deadlineS: o.capacityDeadline, drivers: driverCount, probes: o.probes },
    notes,
    figures: { curve },
    durationS: 0,
  };
  await withEnvironment({ ...serverOf(ctx), users: [...probes, ...tcpUsers, ...httpUsers], drivers: driverCount, timeoutSeconds: o.timeout }, async (env) => {
    const left = () => Math.max(1000, deadline - Date.now());
    await new Promise((r) => setTimeout(r, o.smoke ? 100 : 1000));
    const idle = env.serverSample();
    const redisIdle = await memory(env.admin);
    const probeLogin = await env.drivers[0].call('login', { transport: 'tcp', users: probes, password: PASSWORD, concurrency: 1, deadlineMs: 30_000 }, 60_000);
    if (probeLogin.ok < 2) throw new Error(`probe users could not log in: ${JSON.stringify(probeLogin.refused)}`);
    let tcp = 0;
    let http = 0;
    const refused: Record<string, number> = {};
    const tally = (r: LoginResult) => {
      for (const [code, n] of Object.entries(r.refused)) refused[code] = (refused[code] ?? 0) + n;
    };
    for (let step = 1; step <= o.capacitySteps; step++) {
      if (Date.now() >= deadline) {
        result.status = 'deadline';
        notes.push(`stopped adding connections at ${tcp} TCP + ${http} HTTP: the ${o.capacityDeadline} s deadline passed`);
        break;
      }
      const tcpTo = Math.round((tcpUsers.length * step) / o.capacitySteps);
      const httpTo = Math.round((httpUsers.length * step) / o.capacitySteps);
      const tcpNew = tcpUsers.slice(tcp, tcpTo);
      const httpNew = httpUsers.slice(http, httpTo);
      // Spread this step's sessions over the drivers; each logs its share in with 8 logins in flight.
      const calls = env.drivers.map((d, i) => {
        const share = <T>(list: T[]) => list.filter((_, k) => k % driverCount === i);
        return Promise.all([
          d.call('login', { transport: 'tcp', users: share(tcpNew), password: PASSWORD, concurrency: 8, deadlineMs: left() }, left() + 60_000),
          d.call('login', { transport: 'http', users: share(httpNew), password: PASSWORD, concurrency: 8, deadlineMs: left(), poll: true, pollWait: 60 }, left() + 60_000),
        ]);
      });
      let deadlineHit = false;
      for (const [t, h] of await Promise.all(calls)) {
        tcp += t.ok;
        http += h.ok;
        tally(t);
        tally(h);
        deadlineHit ||= t.deadlineHit || h.deadlineHit;
      }
      const point: CapacityPoint = {
        tcp,
        http,
        connections: tcp + http + 2,
        serverRssMiB: mib(env.serverSample().rssBytes),
        redisUsedMiB: mib((await memory(env.admin)).usedBytes),
        elapsedS: Math.round((Date.now() - started) / 1000),
      };
      curve.push(point);
      progress(`  ${tcp} TCP + ${http} HTTP sessions: server RSS ${point.serverRssMiB} MiB, Redis ${point.redisUsedMiB} MiB`);
      if (deadlineHit) {
        result.status = 'deadline';
        notes.push(`stopped adding connections at ${tcp} TCP + ${http} HTTP: the ${o.capacityDeadline} s deadline passed during a step`);
        break;
      }
    }
    if (Object.keys(refused).length) notes.push(`refused logins: ${JSON.stringify(refused)}`);
    progress('  waiting for the server to finish delivering presence events');
    const settled = await quiet(env, o.smoke ? 300 : 2000, Math.min(120_000, Math.max(10_000, deadline - Date.now() + 60_000)));
    if (!settled) notes.push('presence events were still arriving when the loaded figures were taken');
    const loaded = env.serverSample();
    const redisLoaded = await memory(env.admin);
    const r0 = env.redisSample();
    const s0 = env.serverSample();
    progress(`  probe: ${o.probes} messages one at a time between two TCP users`);
    const probe = await env.drivers[0].call('probe', { count: o.probes, deadlineMs: 120_000 }, 150_000);
    const s1 = env.serverSample();
    const r1 = env.redisSample();
    if (probe.deadlineHit) notes.push(`probe: ${probe.completed} of ${o.probes} messages completed before the deadline`);
    const stats = await env.driverStats();
    const connections = tcp + http + 2;
    result.figures = {
      curve,
      tcpSessions: tcp + 2,
      httpSessions: http,
      parkedPolls: http,
      serverRssIdleMiB: mib(idle.rssBytes),
      serverRssLoadedMiB: mib(loaded.rssBytes),
      serverRssPerConnectionKiB: round((loaded.rssBytes - idle.rssBytes) / 1024 / Math.max(1, connections), 1),
      connectionsPerGiB: loaded.rssBytes > idle.rssBytes ? Math.round((1024 ** 3 / (loaded.rssBytes - idle.rssBytes)) * connections) : null,
      redisUsedIdleMiB: mib(redisIdle.usedBytes),
      redisUsedLoadedMiB: mib(redisLoaded.usedBytes),
      redisRssLoadedMiB: mib(redisLoaded.rssBytes),
      probeReply: summarize(probe.replyLatency),
      probeDelivery: summarize(probe.deliveryLatency),
      probeCpu: { server: round((s1.cpuMs - s0.cpuMs) / Math.max(1, s1.at - s0.at)), redis: round((r1.cpuMs - r0.cpuMs) / Math.max(1, r1.at - r0.at)) },
      driverRssMiB: stats.map((s) => mib(s.rssBytes)),
      eventsReceived: stats.reduce((a, s) => a + s.events, 0),
      closedByServer: stats.reduce((a, s) => a + s.closedByServer, 0),
      presenceSettled: settled,
    };
  });
  result.durationS = Math.round((Date.now() - started) / 1000);
  return result;
}
