import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ClosedLoopArgs, LoadResult, OpenLoopArgs, ProbeArgs, ProbeResult, SlowReaderArgs, SlowReaderResult } from '../protocol.js';
import { cpuMeter, sleep, waitUntil, withDeadline, type Driver, type Phase, type Session } from './driver.js';
import { encode, newHistogram, recordMs } from './histogram.js';
import type { Sent } from './ledger.js';
import { TcpSession } from './tcp-session.js';
import { XmppSession } from './xmpp-session.js';

function peerOf(sessions: Session[], sender: number): Session {
  const k = randomInt(sessions.length - 1);
  return sessions[k >= sender ? k + 1 : k];
}

/**
 * Sends one bench message and settles refusals; the reply's latency goes to
 * `onReply`. Over XMPP a message has no reply: `onReply` is called as it
 * leaves, with `ms` null, and a refusal comes later as an error bounce
 * (`Phase.onRefused`).
 */
function sendMessage(phase: Phase, sessions: Session[], sender: number, startedAt: number, bodyBytes: number, onReply: (ms: number | null, ok: boolean, entry: Sent) => void, to?: Session): void {
  const from = sessions[sender];
  const peer = to ?? peerOf(sessions, sender);
  const { entry, body, tag } = phase.ledger.send(from.user, peer.user, sender, startedAt, bodyBytes);
  if (from instanceof XmppSession) {
    from.message(peer.user, body, tag);
    onReply(null, true, entry);
    return;
  }
  void from.command(`message ${peer.user} ${body}`).then((reply) => {
    const ok = reply.ok === true;
    if (!ok) phase.ledger.refuse(entry, String(reply.error ?? 'unknown'));
    onReply(Number(reply.latencyMs ?? 0), ok, entry);
  });
}

/**
 * Closed loop: every user keeps `window` messages in flight to random peers
 * among the sessions of the range; each delivery (or refusal) frees a slot
 * for the next. Deliveries inside the measuring window give messages/s.
 */
export async function closedLoop(driver: Driver, args: ClosedLoopArgs): Promise<LoadResult> {
  const sessions = driver.sessions(args);
  if (sessions.length < 2) throw new Error(`closed loop needs two ${args.transport} sessions, has ${sessions.length}`);
  const latency = newHistogram();
  const replies = newHistogram();
  const inFlight = new Array<number>(sessions.length).fill(0);
  let running = true;
  let measuring = false;
  let measuredDeliveries = 0;
  const pump = (i: number): void => {
    while (running && inFlight[i] < args.window) {
      inFlight[i]++;
      sendMessage(phase, sessions, i, performance.now(), args.bodyBytes, (ms, ok, entry) => {
        if (measuring && ms !== null) recordMs(replies, ms);
        if (!ok) {
          inFlight[entry.sender]--;
          // A refusal frees the slot; the next send waits a turn so a refusing server is not spun against.
          setImmediate(() => pump(entry.sender));
        }
      });
    }
  };
  const phase = driver.openPhase((entry, at) => {
    inFlight[entry.sender]--;
    if (measuring) {
      measuredDeliveries++;
      recordMs(latency, at - entry.startedAt);
    }
    pump(entry.sender);
  });
  // An XMPP error bounce frees the slot as a refused reply does.
  phase.onRefused = (entry) => {
    inFlight[entry.sender]--;
    setImmediate(() => pump(entry.sender));
  };
  for (let i = 0; i < sessions.length; i++) pump(i);
  await sleep(args.warmupMs);
  measuring = true;
  const cpu = cpuMeter();
  const t0 = performance.now();
  await sleep(args.durationMs);
  measuring = false;
  const measuredMs = performance.now() - t0;
  const cpuShare = cpu();
  running = false;
  const drained = await waitUntil(() => phase.ledger.outstandingCount === 0, args.drainMs);
  driver.closePhase(phase);
  return {
    verification: phase.ledger.close(),
    measuredDeliveries,
    measuredMs,
    latency: encode(latency),
    replyLatency: encode(replies),
    cpu: cpuShare,
    deadlineHit: !drained,
  };
}

/**
 * Open loop: messages leave at a fixed offered rate whatever the server
 * does; latency runs from when each message was due to leave, so a server
 * (or driver) falling behind shows up in it rather than slowing the offer.
 */
export async function openLoop(driver: Driver, args: OpenLoopArgs): Promise<LoadResult> {
  const sessions = driver.sessions(args);
  if (sessions.length < 2) throw new Error(`open loop needs two ${args.transport} sessions, has ${sessions.length}`);
  return offer(driver, sessions, args.rate, args.durationMs, args.drainMs, args.bodyBytes, args.maxInFlight);
}

async function offer(driver: Driver, sessions: Session[], rate: number, durationMs: number, drainMs: number, bodyBytes: number, maxInFlight: number, stop?: () => boolean): Promise<LoadResult> {
  const latency = newHistogram();
  const replies = newHistogram();
  const warmupMs = Math.min(1000, durationMs / 5);
  const total = Math.max(1, Math.floor((rate * durationMs) / 1000));
  const interval = 1000 / rate;
  let inFlight = 0;
  let lagged = 0;
  let measuredDeliveries = 0;
  const phase = driver.openPhase((entry, at) => {
    if (entry.startedAt - start >= warmupMs) {
      measuredDeliveries++;
      recordMs(latency, at - entry.startedAt);
    }
  });
  const cpu = cpuMeter();
  const start = performance.now();
  let k = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - start) / interval) + 1);
      while (k < due && inFlight < maxInFlight && !stop?.()) {
        const scheduled = start + k * interval;
        if (now - scheduled > 5) lagged++;
        inFlight++;
        sendMessage(phase, sessions, k % sessions.length, scheduled, bodyBytes, (ms) => {
          inFlight--;
          if (ms !== null && scheduled - start >= warmupMs) recordMs(replies, ms);
        });
        k++;
      }
      if (k >= total || stop?.() || now - start > durationMs * 2 + 1000) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const measuredMs = Math.max(1, Math.min(performance.now(), start + durationMs) - start - warmupMs);
  const cpuShare = cpu();
  const drained = await waitUntil(() => phase.ledger.outstandingCount === 0, drainMs);
  driver.closePhase(phase);
  return {
    verification: phase.ledger.close(),
    measuredDeliveries,
    measuredMs,
    latency: encode(latency),
    replyLatency: encode(replies),
    driverLagged: lagged,
    cpu: cpuShare,
    deadlineHit: !drained || k < total,
  };
}

/** A probe user's command latency: one message at a time from the first TCP session to the second. */
export async function probe(driver: Driver, args: ProbeArgs): Promise<ProbeResult> {
  const [from, to] = driver.tcp;
  if (!from || !to) throw new Error('the probe needs two TCP sessions');
  const replies = newHistogram();
  const deliveries = newHistogram();
  let delivered: (() => void) | null = null;
  const phase = driver.openPhase((entry, at) => {
    recordMs(deliveries, at - entry.startedAt);
    delivered?.();
  });
  const deadline = performance.now() + args.deadlineMs;
  let completed = 0;
  let sent = 0;
  let deadlineHit = false;
  // A message is complete once both its reply and its delivery are in, in
  // either order (on loopback the delivery often comes first).
  while (sent < args.count) {
    if (performance.now() >= deadline) {
      deadlineHit = true;
      break;
    }
    let replied: (accepted: boolean) => void = () => undefined;
    const reply = new Promise<boolean>((resolve) => (replied = resolve));
    const arrived = new Promise<void>((resolve) => (delivered = resolve));
    sendMessage(phase, [from, to], 0, performance.now(), 32, (ms, accepted) => {
      if (ms !== null) recordMs(replies, ms);
      replied(accepted);
      if (!accepted) delivered?.();
    }, to);
    sent++;
    const outcome = await withDeadline(Promise.all([reply, arrived]), deadline - performance.now());
    if (outcome === null) {
      deadlineHit = true;
      break;
    }
    if (outcome[0]) completed++;
  }
  driver.closePhase(phase);
  phase.ledger.close();
  return { replyLatency: encode(replies), deliveryLatency: encode(deliveries), completed, deadlineHit };
}

/**
 * A reader that never reads: one TCP session stops reading its socket while
 * others flood it and the rest keep talking among themselves at an offered
 * rate. Then it reads again (or, if the server cut it off, resumes the
 * session on a new connection from its cursor) and must get every accepted
 * message.
 */
export async function slowReader(driver: Driver, args: SlowReaderArgs): Promise<SlowReaderResult> {
  let reader = driver.tcp[args.reader];
  const flooders = driver.tcp.slice(args.floodFrom, args.floodTo);
  const others = driver.tcp.slice(args.othersFrom, args.othersTo);
  if (!reader || flooders.length === 0 || others.length < 2) throw new Error('slow reader: not enough TCP sessions');
  reader.parseAll = true;
  const stalledAt = performance.now();
  let cutOffAt = -1;
  const counted = reader.onClose;
  reader.onClose = () => {
    counted();
    if (reader.closedByServer && cutOffAt < 0) cutOffAt = performance.now();
  };
  reader.socket.pause();

  let floodRunning = true;
  const flood = driver.openPhase(() => undefined);
  const floodSessions: Session[] = [reader, ...flooders];
  const floodTask = (async () => {
    const interval = 1000 / args.floodRate;
    const total = Math.floor((args.floodRate * args.durationMs) / 1000);
    const start = performance.now();
    let k = 0;
    let inFlight = 0;
    while (floodRunning && k < total && performance.now() - start < args.durationMs + 1000) {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
      while (k < due && inFlight < 1000) {
        inFlight++;
        sendMessage(flood, floodSessions, 1 + (k % flooders.length), performance.now(), args.floodBodyBytes, () => inFlight--, reader);
        k++;
      }
      await sleep(2);
    }
  })();
  const othersResult = await offer(driver, others, args.othersRate, args.durationMs, 5000, args.othersBodyBytes, 2000);
  floodRunning = false;
  await floodTask;

  // Read again; if the server cut the reader off, come back with `resume` from the last cursor seen.
  const catchUpStart = performance.now();
  const cutOffBeforeResume = cutOffAt >= 0;
  let resumed = false;
  reader.socket.resume();
  await waitUntil(() => flood.ledger.outstandingCount === 0 || reader.closed, args.catchUpMs);
  if (reader.closed && flood.ledger.outstandingCount > 0) {
    resumed = true;
    const again = await TcpSession.open(driver.target.host, driver.target.tcpPort, reader.user, true, 5000);
    driver.adopt(again);
    again.token = reader.token;
    const reply = await withDeadline(again.command(`resume ${reader.token} ${reader.cursor}`), 10_000);
    if (reply?.ok === true) {
      driver.tcp[args.reader] = again;
      reader = again;
      await waitUntil(() => flood.ledger.outstandingCount === 0, Math.max(1000, args.catchUpMs - (performance.now() - catchUpStart)));
    }
  }
  const caughtUp = flood.ledger.outstandingCount === 0;
  driver.closePhase(flood);
  return {
    flood: flood.ledger.close(),
    others: othersResult,
    readerCutOff: cutOffAt >= 0,
    cutOffAfterMs: cutOffAt >= 0 ? cutOffAt - stalledAt : -1,
    cutOffSeenOnResume: cutOffAt >= 0 && !cutOffBeforeResume,
    catchUpMs: caughtUp ? performance.now() - catchUpStart : -1,
    resumed,
  };
}
