import { performance } from 'node:perf_hooks';
import type {
  BroadcastArgs,
  BroadcastResult,
  CpuShare,
  DriverStats,
  InitArgs,
  LoginArgs,
  LoginResult,
  LogoutArgs,
  LogoutResult,
  SessionRange,
  Target,
} from '../protocol.js';
import { HttpSession } from './http-session.js';
import { Ledger, messageBody, phaseOf, type Sent } from './ledger.js';
import { TcpSession, type WireObject } from './tcp-session.js';
import { XmppSession, XmppError } from './xmpp-session.js';

/** What a client session offers the load loops, whichever the transport. */
export interface Session {
  readonly user: string;
  command(line: string): Promise<WireObject>;
}

/** A measuring phase: its books and what to do when one of its messages arrives. */
export interface Phase {
  ledger: Ledger;
  onDelivered: (entry: Sent, at: number) => void;
  /** A message refused after it left, by an error bounce (XMPP: there is no reply to refuse it). */
  onRefused?: (entry: Sent) => void;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true once `condition` holds, false at the deadline; checks every `everyMs`. */
export async function waitUntil(condition: () => boolean, deadlineMs: number, everyMs = 20): Promise<boolean> {
  const deadline = performance.now() + deadlineMs;
  while (!condition()) {
    if (performance.now() >= deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

/** CPU this process used over a stretch of wall time. */
export function cpuMeter(): () => CpuShare {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return { share: wallMs > 0 ? cpuMs / wallMs : 0, cpuMs, wallMs };
  };
}

/**
 * One driver process: the client sessions it holds, and where the events
 * they receive go. Messages are routed by the tag in their text to the phase
 * that sent them; broadcasts by their tag to whoever waits for them.
 */
export class Driver {
  readonly tcp: TcpSession[] = [];
  readonly http: HttpSession[] = [];
  /** Sessions to a peer XMPP server (ejabberd, Prosody), when the target is one. */
  readonly xmpp: XmppSession[] = [];
  private readonly phases = new Map<number, Phase>();
  private nextPhase = 0;
  /** Arrival times (performance.now()) of each broadcast tag, per recipient. */
  private readonly broadcasts = new Map<string, { arrivals: number[]; seen: Set<string>; duplicates: number }>();
  private closedByServer = 0;
  /** Presence and other events received by sessions no longer held (logged out), so totals never go down. */
  private retired = { presence: 0, events: 0 };
  /** Bench messages of phases already closed, or not ours at all. */
  stray = 0;

  constructor(
    readonly target: Target,
    readonly runId: string,
    readonly driverIndex: number,
  ) {}

  static fromInit(args: InitArgs): Driver {
    return new Driver(args.target, args.runId, args.driverIndex);
  }

  openPhase(onDelivered: Phase['onDelivered']): Phase {
    const phase: Phase = { ledger: new Ledger(this.runId, this.driverIndex, this.nextPhase++), onDelivered };
    this.phases.set(phase.ledger.phase, phase);
    return phase;
  }

  closePhase(phase: Phase): void {
    this.phases.delete(phase.ledger.phase);
  }

  sessions(range: SessionRange): Session[] {
    const all: Session[] = range.transport === 'tcp' ? this.tcp : range.transport === 'http' ? this.http : this.xmpp;
    return all.slice(range.from ?? 0, range.to ?? all.length);
  }

  private event(receiver: string, event: WireObject, at: number): void {
    if (event.type === 'message') {
      const phaseIndex = phaseOf(event, this.runId, this.driverIndex);
      const phase = phaseIndex === null ? undefined : this.phases.get(phaseIndex);
      if (!phase) {
        this.stray++;
        return;
      }
      if (event.gap === true) phase.ledger.verification.gaps++;
      const entry = phase.ledger.receive(receiver, event);
      if (entry) phase.onDelivered(entry, at);
    } else if (event.type === 'message_error') {
      // An XMPP error bounce of one of our messages: the server refused it (by condition).
      const phaseIndex = phaseOf(event, this.runId, this.driverIndex);
      const phase = phaseIndex === null ? undefined : this.phases.get(phaseIndex);
      const entry = phase?.ledger.refuseByBody(event, String(event.error ?? 'unknown'));
      if (!phase || !entry) this.stray++;
      else phase.onRefused?.(entry);
    } else if (event.type === 'broadcast') {
      const tag = messageBody(event);
      if (!tag.startsWith(`bb.${this.runId}.`)) return;
      let seen = this.broadcasts.get(tag);
      if (!seen) this.broadcasts.set(tag, (seen = { arrivals: [], seen: new Set(), duplicates: 0 }));
      if (seen.seen.has(receiver)) seen.duplicates++;
      else {
        seen.seen.add(receiver);
        seen.arrivals.push(at);
      }
    }
  }

  /** Routes a session's events to this driver's phases and broadcast watchers. */
  adopt(session: TcpSession | HttpSession | XmppSession): void {
    session.onEvent = (event, at) => this.event(session.user, event, at);
    if (session instanceof TcpSession || session instanceof XmppSession) {
      session.onClose = () => {
        if (session.closedByServer) this.closedByServer++;
      };
    }
  }

  async login(args: LoginArgs): Promise<LoginResult> {
    const started = performance.now();
    const deadline = started + args.deadlineMs;
    const result: LoginResult = { ok: 0, refused: {}, latenciesUs: [], wallMs: 0, deadlineHit: false };
    const refuse = (code: string) => (result.refused[code] = (result.refused[code] ?? 0) + 1);
    const latencies: (number | undefined)[] = new Array(args.users.length);
    // Sessions keep the order of `users`, whatever order their logins finish in, so the runner can name them by index.
    const tcp: (TcpSession | undefined)[] = new Array(args.users.length);
    const http: (HttpSession | undefined)[] = new Array(args.users.length);
    const xmpp: (XmppSession | undefined)[] = new Array(args.users.length);
    let next = 0;
    const one = async (index: number): Promise<void> => {
      const user = args.users[index];
      const left = deadline - performance.now();
      if (args.transport === 'xmpp') {
        if (!this.target.xmpp) throw new Error('an XMPP login needs an XMPP target');
        const t0 = performance.now();
        try {
          const session = await XmppSession.open(this.target.xmpp, user, args.password, Math.max(1, left));
          this.adopt(session);
          latencies[index] = (performance.now() - t0) * 1000;
          xmpp[index] = session;
        } catch (err) {
          refuse(err instanceof XmppError ? err.code : 'unknown');
          if (!result.firstError) result.firstError = err instanceof Error ? err.message : String(err);
          return;
        }
      } else if (args.transport === 'tcp') {
        let session: TcpSession;
        try {
          session = await TcpSession.open(this.target.host, this.target.tcpPort, user, args.parseAll === true, Math.max(1, left));
        } catch {
          refuse('connect_failed');
          return;
        }
        this.adopt(session);
        const t0 = performance.now();
        const reply = await withDeadline(session.command(`login ${user} ${args.password}`), deadline - t0);
        if (!reply) {
          refuse('deadline');
          session.close();
          return;
        }
        if (reply.ok !== true) {
          refuse(String(reply.error ?? 'unknown'));
          session.close();
          return;
        }
        session.token = String(reply.token ?? '');
        if (typeof reply.cursor === 'string') session.cursor = reply.cursor;
        latencies[index] = Number(reply.latencyMs) * 1000;
        tcp[index] = session;
      } else {
        const session = new HttpSession(this.target, user);
        this.adopt(session);
        const t0 = performance.now();
        const reply = await session.login(args.password, Math.max(1, left));
        if (reply.ok !== true) {
          refuse(String(reply.error ?? 'unknown'));
          return;
        }
        latencies[index] = (performance.now() - t0) * 1000;
        http[index] = session;
        if (args.poll) session.startPolling(Math.min(60, args.pollWait ?? 60));
      }
      result.ok++;
    };
    const worker = async (): Promise<void> => {
      while (next < args.users.length) {
        if (performance.now() >= deadline) {
          result.deadlineHit = true;
          return;
        }
        await one(next++);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(args.concurrency, args.users.length)) }, worker));
    for (const s of tcp) if (s) this.tcp.push(s);
    for (const s of http) if (s) this.http.push(s);
    for (const s of xmpp) if (s) this.xmpp.push(s);
    if (result.refused.deadline) result.deadlineHit = true;
    result.latenciesUs = latencies.filter((v): v is number => v !== undefined).map((v) => Math.round(v));
    result.wallMs = performance.now() - started;
    return result;
  }

  async logout(args: LogoutArgs): Promise<LogoutResult> {
    const started = performance.now();
    const deadline = started + args.deadlineMs;
    const result: LogoutResult = { users: [], latenciesUs: [], wallMs: 0, deadlineHit: false };
    for (let k = 0; k < args.count && this.tcp.length > 0; k++) {
      const session = this.tcp[this.tcp.length - 1];
      const reply = await withDeadline(session.command('logout'), deadline - performance.now());
      if (!reply) {
        result.deadlineHit = true;
        break;
      }
      this.tcp.pop();
      session.close();
      this.retired.presence += session.presence;
      this.retired.events += session.events;
      if (reply.ok === true) {
        result.users.push(session.user);
        result.latenciesUs.push(Math.round(Number(reply.latencyMs) * 1000));
      }
    }
    result.wallMs = performance.now() - started;
    return result;
  }

  async broadcast(args: BroadcastArgs): Promise<BroadcastResult> {
    const result: BroadcastResult = { replyUs: -1, replyOk: false, replyText: '', arrivalsEpochUs: [], sentEpochUs: 0, missing: 0, duplicates: 0 };
    let sentAt = 0;
    if (args.sender >= 0) {
      const sender = this.tcp[args.sender];
      sentAt = performance.now();
      result.sentEpochUs = Math.round((performance.timeOrigin + sentAt) * 1000);
      const reply = await withDeadline(sender.command(`broadcast ${args.tag}`), args.deadlineMs);
      result.replyOk = reply?.ok === true;
      result.replyText = String(reply?.text ?? 'no reply before the deadline');
      if (reply) result.replyUs = Math.round(Number(reply.latencyMs) * 1000);
    }
    await waitUntil(() => (this.broadcasts.get(args.tag)?.arrivals.length ?? 0) >= args.expected, Math.max(0, args.deadlineMs - (sentAt ? performance.now() - sentAt : 0)));
    const seen = this.broadcasts.get(args.tag);
    result.arrivalsEpochUs = (seen?.arrivals ?? []).map((at) => Math.round((performance.timeOrigin + at) * 1000));
    result.missing = Math.max(0, args.expected - result.arrivalsEpochUs.length);
    result.duplicates = seen?.duplicates ?? 0;
    this.broadcasts.delete(args.tag);
    return result;
  }

  presence(): number {
    let total = this.retired.presence;
    for (const s of this.tcp) total += s.presence;
    for (const s of this.http) total += s.presence;
    for (const s of this.xmpp) total += s.presence;
    return total;
  }

  stats(): DriverStats {
    const cpu = process.cpuUsage();
    let events = this.retired.events;
    for (const s of this.tcp) events += s.events;
    for (const s of this.http) events += s.events;
    for (const s of this.xmpp) events += s.events;
    return {
      cpu: { userMs: cpu.user / 1000, systemMs: cpu.system / 1000 },
      rssBytes: process.memoryUsage.rss(),
      tcpSessions: this.tcp.length,
      httpSessions: this.http.length,
      xmppSessions: this.xmpp.length,
      presence: this.presence(),
      events,
      closedByServer: this.closedByServer,
    };
  }
}

/** The promise's value, or null if the deadline comes first. */
export async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), Math.max(0, ms))));
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
