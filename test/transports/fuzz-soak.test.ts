import { randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../../handlers/registry.js';
import { importUsers } from '../../handlers/users.js';
import { openState } from '../../state/connect.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startTestReplica } from '../support/replica.js';
import { sampleUsers } from '../support/context.js';
import { fingerprint } from '../support/fingerprints.js';

/**
 * A fuzz soak over TCP (issue 21: "a logged-in connection had 217 of 300
 * lines unanswered for 10 s while open"). One replica on a real
 * redis-server; three connections that log in and send a random mix of
 * valid and invalid lines to each other (and resume after a close, from the
 * last event id they read, as the CLI does; log in again after a logout),
 * and three that never log in and send junk and failed logins, each from
 * its own loopback address.
 *
 * Every line is counted: each line sent on a connection that stays open
 * gets exactly one reply (`pong` for `ping`), in order, with the line's verb
 * as its `cmd`; events are told apart by their type. At most FUZZ_WINDOW
 * lines are in flight on a connection, except for a rare burst past the
 * server's queue (so its backpressure is exercised). The soak fails, with
 * the connection's last lines, on:
 * - a stall: lines unanswered for FUZZ_STALL_MS on an open connection that
 *   reads, or a connection still open that long after the server said it
 *   closes it;
 * - a close by the server without a stated reason (a session_end, or a
 *   reply that closes: a limit, a third failed login, account_blocked);
 * - a reply out of order, a line that is not JSON, a repeated event, a
 *   control character passed on, a resume from a cursor the server gave
 *   that is refused;
 * - a server-side connection left open after every client closed;
 * and then the replica must still serve a fresh login and whoelse.
 *
 * Each connection draws its lines from its own generator, seeded from the
 * soak's seed (in the test's name). Replay with
 *   FUZZ_SEED=<seed> npx vitest run test/transports/fuzz-soak.test.ts
 * (the lines are the same; their timing is not). Other knobs: FUZZ_LINES
 * (total lines, default 30000), FUZZ_WINDOW (default 16), FUZZ_BURST (the
 * chance that a write is a burst, default 0.01; 0 for none), FUZZ_STALL_MS
 * (default 5000), FUZZ_MAX_MS (sending stops after this long whatever was
 * sent, default 40000).
 */

const envNumber = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, not ${raw}`);
  return value;
};

const SEED = envNumber('FUZZ_SEED', randomInt(2 ** 31));
const TOTAL_LINES = envNumber('FUZZ_LINES', 30_000);
const WINDOW = envNumber('FUZZ_WINDOW', 16);
const STALL_MS = envNumber('FUZZ_STALL_MS', 5_000);
const MAX_SEND_MS = envNumber('FUZZ_MAX_MS', 40_000);
/** How often a write is a burst past the window (FUZZ_BURST=0 turns bursts off). */
const BURST_CHANCE = envNumber('FUZZ_BURST', 0.01);

const maxLineBytes = 8192;
const maxMessageLength = 1000;
const config = {
  maxLineBytes,
  maxMessageLength,
  // High enough that most commands run, low enough that a fast connection
  // meets the limit now and then (rate_limited is a reply too).
  commandRate: 200,
  commandBurst: 400,
  // The junk connections fail logins on purpose: short locks, so they lift
  // while the soak runs.
  blockDuration: 2,
};
const replicaOptions = {
  // The limits of a real server (SPEC section 6), some shortened so that
  // closes for a limit happen during the soak.
  byteRate: 524_288,
  byteBurst: 2_097_152,
  lineTimeoutMs: 3_000,
  loginTimeoutMs: 6_000,
};

/** The fuzzers' users (sampleUsers), a user the junk fails to log in as, and one the final check logs in. */
const fuzzUsers = sampleUsers.slice(0, 3);
const junkTarget = { user: 'rey', password: 'jakku' };
const checker = sampleUsers[3];
const allNames = [...sampleUsers.map((u) => u.user), junkTarget.user];

// ---------------------------------------------------------------------------
// A seeded generator (mulberry32): each connection has its own stream.

class Random {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

// ---------------------------------------------------------------------------
// Lines

/** What a line must be answered with: a reply whose `cmd` is this (for `ping`, `pong` or a reply, a usage error). */
type Expect = { kind: 'reply'; cmd: string; pong: boolean };

interface Line {
  bytes: Buffer;
  expect: Expect;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The answer a line gets from the framing rules (PROTOCOL.md section 4.1): its verb, or '' for a line refused unread. */
function expectationOf(bytes: Buffer): Expect {
  const refused = { kind: 'reply', cmd: '', pong: false } as const;
  if (bytes.length > maxLineBytes) return refused;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return refused;
  }
  if (text.endsWith('\r')) text = text.slice(0, -1);
  const space = text.indexOf(' ');
  const cmd = space < 0 ? text : text.slice(0, space);
  return { kind: 'reply', cmd, pong: cmd === 'ping' };
}

function line(content: string | Buffer): Line {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (bytes.includes(0x0a)) throw new Error('a line holds no newline');
  return { bytes, expect: expectationOf(bytes) };
}

/** A line for a log: printable, and short. */
function shown(bytes: Buffer): string {
  const chars = Array.from(bytes.toString('utf8'));
  return chars.length > 120 ? `${JSON.stringify(chars.slice(0, 100).join(''))}…(${bytes.length} bytes)` : JSON.stringify(chars.join(''));
}

const verbs = commands.map((row) => row.verb);
const words = ['hi', 'hello there', 'Hey Dude', 'é ünïcode', '中文字符', '🎉🎉', 'e\u0301', '"quoted" {json} \\back', '<b>html</b>', 'tab\there', 'bell\u0007', 'nul\u0000', 'del\u007f', 'c1\u0085'];

function text(r: Random): string {
  switch (r.int(0, 9)) {
    case 0:
      return '';
    case 1:
      return ' '.repeat(r.int(1, 3));
    case 2:
      // At the message limit, or just over it (in code points).
      return '\u{1F600}'.repeat(maxMessageLength + r.int(-1, 1));
    case 3:
      return 'x'.repeat(r.int(maxMessageLength - 2, maxMessageLength + 2));
    default: {
      const parts: string[] = [];
      for (let k = r.int(1, 5); k > 0; k--) parts.push(r.pick(words));
      return parts.join(r.pick([' ', '  ', '']));
    }
  }
}

function name(r: Random, self: string): string {
  switch (r.int(0, 7)) {
    case 0:
      return self;
    case 1:
      return r.pick(['nobody', 'Yoda', 'bad/name', 'x'.repeat(40), '', 'ünï', '-']);
    default:
      return r.pick(allNames.filter((n) => n !== self));
  }
}

/** Bytes that are not a command: random bytes, invalid UTF-8, control characters, CR in odd places. */
function junkBytes(r: Random): Buffer {
  switch (r.int(0, 7)) {
    case 0:
      return Buffer.alloc(0);
    case 1:
      return Buffer.from(r.pick(['\r', '\r\r', ' ', '\t', '\u0000', 'who\relse', 'whoelse\r\r', ' whoelse', 'WHOELSE', 'ping ', 'ping\r']));
    case 2:
      return Buffer.concat([Buffer.from(`${r.pick(verbs)} `), Buffer.from([0xc3, 0x28]), Buffer.from(' tail')]);
    case 3:
      return Buffer.from([0xff, 0xfe, 0xed, 0x80, 0xc0, 0xaf]);
    case 4: {
      // Over the line limit, by a little or by a lot.
      const n = r.chance(0.5) ? maxLineBytes + r.int(-2, 2) : r.int(maxLineBytes + 1, 3 * maxLineBytes);
      return Buffer.from(`${r.pick(verbs)} ${'y'.repeat(Math.max(0, n - 20))}`.slice(0, n));
    }
    default: {
      const bytes = Buffer.alloc(r.int(1, 60));
      for (let k = 0; k < bytes.length; k++) bytes[k] = r.int(0, 255);
      return Buffer.from(bytes.filter((b) => b !== 0x0a));
    }
  }
}

/** A line from a logged-in fuzzer: mostly commands to the others, some malformed, some junk. */
function fuzzerLine(r: Random, self: string): Line {
  const roll = r.int(0, 99);
  if (roll < 22) return line(`message ${name(r, self)} ${text(r)}`);
  if (roll < 30) return line(`broadcast ${text(r)}`);
  if (roll < 36) return line('whoelse');
  if (roll < 40) return line(`whoelsesince ${r.pick(['0', '1', '60', '3600', '-1', 'abc', '99999999999999999999', ''])}`);
  if (roll < 46) return line(`${r.pick(['block', 'unblock'])} ${name(r, self)}`);
  if (roll < 50) return line(`${r.pick(['startprivate', 'acceptprivate', 'declineprivate', 'stopprivate'])} ${name(r, self)}`);
  if (roll < 52) return line(`private ${name(r, self)} ${text(r)}`);
  if (roll < 54) {
    const fp = fingerprint(r.int(0, 255));
    return line(r.pick([`p2p 4501 ${fp}`, `p2p 127.0.0.1 ${r.int(1, 65535)} ${fp}`, 'p2p 127.0.0.1 4501', 'p2p', 'p2p a b c', `p2p localhost 4501 ${fp}`, `p2p 127.0.0.1 notaport ${fp}`]));
  }
  if (roll < 58) return line(r.pick(['touch', 'ping', 'ping extra', 'touch extra', 'whoelse extra']));
  if (roll < 60) return line(r.pick([`login ${self} wrong`, `login ${r.pick(allNames)} ${text(r)}`, 'login', 'resume', `resume ${self}:forged`, 'resume a b c']));
  if (roll < 70) return line(`${r.pick(verbs)}${r.pick(['', ' ', '  '])}${r.chance(0.5) ? text(r) : ''}`);
  if (roll < 76) return line(`${r.pick(['dance', 'Message', 'events', 'help', 'quit', '.', '💬'])} ${text(r)}`);
  if (roll < 82) {
    // CR at the end (CRLF), or more than one.
    const base = fuzzerLine(r, self).bytes;
    return line(Buffer.concat([base, Buffer.from(r.pick(['\r', '\r', '\r\r']))]));
  }
  return line(junkBytes(r));
}

/** A line from a connection that never logs in: everything above, plus failed logins (never as a fuzzer's user). */
function junkLine(r: Random): Line {
  const roll = r.int(0, 99);
  if (roll < 8) return line(`login ${r.pick(['nobody', 'ghost', 'bad/name', junkTarget.user])} ${r.pick(['x', 'wrong', 'jakku?'])}`);
  if (roll < 12) return line(r.pick(['login', 'login onlyname', `resume ${r.pick(allNames)}:${'A'.repeat(22)}`, 'resume garbage', 'resume', `resume yoda:x ${r.pick(['0-0', 'zz', '1-1-1'])}`]));
  if (roll < 40) {
    const l = fuzzerLine(r, 'nobody');
    // A fuzzer's line may be a login with a real user's name: not from here.
    return /^login \S/.test(l.bytes.toString('latin1')) ? line('login') : l;
  }
  return line(junkBytes(r));
}

// ---------------------------------------------------------------------------
// A connection that counts its replies

type Json = Record<string, unknown>;

interface InFlight {
  line: Line;
  sentAt: number;
  resolve?: (reply: Json | null) => void;
}

/** Replies that say a limit closes the connection (sent at once, ahead of replies still due). */
function isClosingLimitReply(m: Json): boolean {
  return m.type === 'reply' && m.ok === false && (m.error === 'too_many_connections' || (typeof m.text === 'string' && m.text.includes('The connection is closed')));
}

const closingLoginErrors = new Set(['invalid_password', 'invalid_user']);

class Problem extends Error {}

class Wire {
  readonly inFlight: InFlight[] = [];
  private readonly history: string[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  closedByUs = false;
  /** Why the server closed the connection, once it said so. */
  closeReason?: string;
  /** The server must close the connection by then (it said so, or a line was left unfinished). */
  closeDueBy = Infinity;
  failedLogins = 0;
  /** Last time a reply came, or the time the oldest line now unanswered was sent, or reading resumed. */
  progressAt = Date.now();
  /** Not reading (a slow client): not a stall of the server's. */
  readingPaused = false;
  sent = 0;
  replies = 0;
  events = 0;

  private constructor(
    readonly name: string,
    readonly socket: Socket,
    private readonly soak: Soak,
    private readonly onObject: (m: Json) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined);
  }

  static open(soak: Soak, name: string, port: number, from: string, onObject: (m: Json) => void): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: from, noDelay: true }, () => resolve(new Wire(name, socket, soak, onObject)));
      socket.once('error', reject);
    });
  }

  private note(entry: string): void {
    this.history.push(entry);
    if (this.history.length > 40) this.history.shift();
  }

  /** Sends lines, in one write or cut into pieces at random points. */
  send(lines: Line[], r: Random): void {
    if (this.closed || this.closedByUs) return;
    const now = Date.now();
    if (this.inFlight.length === 0) this.progressAt = now;
    for (const l of lines) {
      this.inFlight.push({ line: l, sentAt: now });
      this.note(`> ${shown(l.bytes)}`);
    }
    this.sent += lines.length;
    this.soak.sent += lines.length;
    const payload = Buffer.concat(lines.flatMap((l) => [l.bytes, Buffer.from('\n')]));
    if (r.chance(0.8)) {
      this.socket.write(payload);
      return;
    }
    let at = 0;
    while (at < payload.length) {
      const end = Math.min(payload.length, at + r.int(1, Math.max(1, Math.ceil(payload.length / 2))));
      this.socket.write(payload.subarray(at, end));
      at = end;
    }
  }

  /** Sends one line and waits for its reply (null if the connection closed first). */
  request(l: Line, r: Random): Promise<Json | null> {
    if (this.closed || this.closedByUs) return Promise.resolve(null);
    const waiting = new Promise<Json | null>((resolve) => {
      this.send([l], r);
      this.inFlight[this.inFlight.length - 1].resolve = resolve;
    });
    return waiting;
  }

  private data(chunk: Buffer): void {
    if (this.closedByUs) return;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    let nl;
    while ((nl = this.buffer.indexOf(0x0a)) >= 0) {
      const raw = this.buffer.subarray(0, nl);
      this.buffer = this.buffer.subarray(nl + 1);
      this.received(raw);
      if (this.closedByUs) return;
    }
    this.wake();
  }

  private received(raw: Buffer): void {
    let m: Json;
    try {
      m = JSON.parse(utf8.decode(raw)) as Json;
    } catch {
      return this.fail(`the server sent a line that is not UTF-8 JSON: ${shown(raw)}`);
    }
    this.note(`< ${raw.length > 300 ? raw.toString('utf8').slice(0, 290) + '…' : raw.toString('utf8')}`);
    if (typeof m !== 'object' || m === null || typeof m.type !== 'string') return this.fail(`the server sent a line without a type: ${shown(raw)}`);
    if (m.type === 'reply' || m.type === 'pong') this.reply(m);
    else this.event(m);
    this.onObject(m);
  }

  /** The server said it closes the connection: it must, within the stall deadline. */
  private closing(reason: string): void {
    this.closeReason = reason;
    this.closeDueBy = Math.min(this.closeDueBy, Date.now() + STALL_MS);
  }

  private reply(m: Json): void {
    if (isClosingLimitReply(m)) {
      this.closing(`limit: ${String(m.error)} ${String(m.text)}`);
      return;
    }
    const due = this.inFlight.shift();
    if (!due) return this.fail(`a reply to no line: ${JSON.stringify(m)}`);
    this.replies++;
    this.soak.replies++;
    this.progressAt = Date.now();
    if (m.type === 'pong') {
      if (!due.line.expect.pong) return this.fail(`out of order: a pong came for ${shown(due.line.bytes)}`);
    } else {
      if (m.type !== 'reply' || typeof m.ok !== 'boolean' || typeof m.text !== 'string') return this.fail(`not a reply for ${shown(due.line.bytes)}: ${JSON.stringify(m)}`);
      if (m.cmd !== due.line.expect.cmd) {
        return this.fail(`out of order: the reply ${JSON.stringify(m)} came for ${shown(due.line.bytes)} (cmd ${JSON.stringify(due.line.expect.cmd)} expected)`);
      }
      if (m.ok === false && typeof m.error !== 'string') return this.fail(`an error without a code: ${JSON.stringify(m)}`);
      if (m.cmd === 'login' && m.ok === false && closingLoginErrors.has(String(m.error))) {
        this.failedLogins++;
        if (this.failedLogins >= 3) this.closing(`third failed login: ${String(m.error)}`);
      }
      if (m.cmd === 'login' && m.error === 'account_blocked') this.closing('account_blocked');
    }
    this.soak.count(m.type === 'pong' ? 'pong' : m.ok ? `ok ${String(m.cmd).slice(0, 14)}` : String(m.error));
    due.resolve?.(m);
  }

  private event(m: Json): void {
    this.events++;
    this.soak.events++;
    if (typeof m.text !== 'string') return this.fail(`an event without a text: ${JSON.stringify(m)}`);
    if (typeof m.id !== 'string') return this.fail(`an event without an id: ${JSON.stringify(m)}`);
    // SPEC section 6: control characters never reach another user.
    if ((m.type === 'message' || m.type === 'broadcast') && /[\u0000-\u001f\u007f-\u009f]/.test(m.text)) {
      return this.fail(`a control character was passed on: ${JSON.stringify(m)}`);
    }
    this.soak.count(`event ${m.type}`);
    if (m.type === 'session_end') this.closing(`session_end: ${String(m.reason)}`);
  }

  private onClose(): void {
    this.closed = true;
    if (!this.closedByUs && !this.closeReason) {
      this.fail(`the server closed the connection without saying why, with ${this.inFlight.length} line(s) unanswered`);
    }
    for (const due of this.inFlight.splice(0)) due.resolve?.(null);
    this.wake();
  }

  /** Closes from this side (a dropped client): lines still unanswered are not counted. */
  drop(): void {
    this.closedByUs = true;
    for (const due of this.inFlight.splice(0)) due.resolve?.(null);
    this.socket.destroy();
    this.wake();
  }

  pauseReading(): void {
    this.readingPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    this.progressAt = Date.now();
    this.socket.resume();
  }

  get open(): boolean {
    return !this.closed && !this.closedByUs;
  }

  /** Lines unanswered for longer than the deadline while the connection is open and read: a stall. */
  stalled(now: number): boolean {
    if (!this.open || this.readingPaused) return false;
    if (now > this.closeDueBy) return true;
    return this.inFlight.length > 0 && now - this.progressAt > STALL_MS;
  }

  report(now: number): string {
    const oldest = this.inFlight[0];
    return [
      `connection ${this.name}: ${this.inFlight.length} line(s) unanswered${oldest ? `, the oldest sent ${now - oldest.sentAt} ms ago` : ''}, ` +
        `last reply ${now - this.progressAt} ms ago; ${this.sent} sent, ${this.replies} replies, ${this.events} events` +
        `${this.closeReason ? `; the server said it would close: ${this.closeReason}` : ''}` +
        `${this.closeDueBy < now ? `; still open ${now - this.closeDueBy + STALL_MS} ms after it should have closed` : ''}`,
      `unanswered: ${this.inFlight.slice(0, 20).map((f) => shown(f.line.bytes)).join(', ')}`,
      'last lines (> sent, < received):',
      ...this.history.map((h) => `  ${h}`),
    ].join('\n');
  }

  fail(message: string): void {
    this.soak.fail(new Problem(`${message}\n${this.report(Date.now())}`));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `ready` holds, checked whenever something arrives or the soak stops. */
  async until(ready: () => boolean): Promise<void> {
    while (!ready() && !this.soak.stopping) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.soak.waiters.delete(done);
          resolve();
        };
        this.waiters.push(done);
        this.soak.waiters.add(done);
      });
    }
  }
}

// ---------------------------------------------------------------------------
// The soak

class Soak {
  stopping = false;
  /** FUZZ_MAX_MS passed: no more lines are sent, whatever the budget. */
  timeUp = false;
  problem?: Error;
  sent = 0;
  replies = 0;
  events = 0;
  readonly waiters = new Set<() => void>();
  readonly wires = new Set<Wire>();
  readonly counts: Record<string, number> = {};

  constructor(readonly port: number) {}

  count(what: string): void {
    this.counts[what] = (this.counts[what] ?? 0) + 1;
  }

  fail(problem: Error): void {
    if (!this.problem) this.problem = problem;
    this.stop();
  }

  stop(): void {
    this.stopping = true;
    for (const w of this.waiters) w();
    this.waiters.clear();
    // Nobody waits for a reply any more.
    for (const wire of this.wires) for (const due of wire.inFlight) due.resolve?.(null);
  }

  budgetLeft(): boolean {
    return !this.stopping && !this.timeUp && this.sent < TOTAL_LINES;
  }

  async open(name: string, from: string, onObject: (m: Json) => void): Promise<Wire> {
    const wire = await Wire.open(this, name, this.port, from, onObject);
    this.wires.add(wire);
    wire.socket.once('close', () => this.wires.delete(wire));
    return wire;
  }
}

/** Yields to the event loop so replies are read between batches. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
/** A short random wait (for a slow reader, or between pieces of a batch). */
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The lines of one write: up to `room` of them, or now and then a burst past
 * the window (more than the server queues before it stops reading the
 * socket, and more than a socket buffer's worth of bytes), so the server's
 * backpressure on a pipelining client is part of the soak.
 */
function lines(soak: Soak, r: Random, room: number, next: () => Line): Line[] {
  const batch: Line[] = [];
  if (r.chance(BURST_CHANCE)) {
    soak.count('bursts');
    for (let k = r.int(20, 48); k > 0; k--) batch.push(r.chance(0.15) ? line(Buffer.alloc(r.int(maxLineBytes + 1, 3 * maxLineBytes), 'z')) : next());
    return batch;
  }
  for (let k = r.int(1, room); k > 0; k--) batch.push(next());
  return batch;
}

/**
 * The end of a connection's round: once the budget is spent, every line
 * still unanswered on an open connection is answered (or the watchdog
 * fails the soak); then the connection is dropped.
 */
async function finish(soak: Soak, wire: Wire): Promise<void> {
  if (wire.open && !soak.budgetLeft()) await wire.until(() => !wire.open || wire.inFlight.length === 0);
  if (wire.open) wire.drop();
  else if (!wire.closedByUs) soak.count(`closed by the server (${String(wire.closeReason).replace(/ Error\..*/, '')})`);
}

/** A logged-in fuzzer: logs in, sends, resumes from its last event id after a close, logs in again after its session ends. */
async function fuzzer(soak: Soak, index: number, user: { user: string; password: string }, r: Random): Promise<void> {
  let token: string | null = null;
  let cursor: string | null = null;
  /** Event ids seen in the current session: one seen twice was repeated by the server. */
  let seen = new Set<string>();
  const onObject = (m: Json) => {
    if (m.type === 'reply' && m.ok === true && (m.cmd === 'login' || m.cmd === 'resume')) {
      if (m.cmd === 'login') seen = new Set();
      token = String(m.token);
      cursor = String(m.cursor);
    } else if (m.type !== 'reply' && m.type !== 'pong') {
      const id = String(m.id);
      if (m.type !== 'gap' && seen.has(id)) soak.fail(new Problem(`${user.user} got the event ${id} twice: ${JSON.stringify(m)}`));
      seen.add(id);
      cursor = id;
      if (m.type === 'session_end') token = null;
    }
  };

  while (soak.budgetLeft()) {
    const wire = await soak.open(`${user.user}#${index}`, '127.0.0.1', onObject);
    // Attach: resume the session if it lives, else log in.
    let attached = false;
    for (let attempt = 0; !attached && wire.open && !soak.stopping; attempt++) {
      if (token && cursor) {
        const reply = await wire.request(line(`resume ${token} ${cursor}`), r);
        if (!reply) break;
        if (reply.ok === true) {
          soak.count('resumed');
          attached = true;
        } else if (reply.error === 'not_logged_in') {
          token = null;
        } else if (reply.error === 'unavailable') {
          // The store did not answer in time (a loaded machine): a reply that says so; try again.
          soak.count('resume unavailable');
          await pause(50);
        } else {
          return soak.fail(new Problem(`resume from a cursor the server gave (${String(cursor)}) was refused: ${JSON.stringify(reply)}\n${wire.report(Date.now())}`));
        }
      } else {
        const reply = await wire.request(line(`login ${user.user} ${user.password}`), r);
        if (!reply) break;
        if (reply.ok === true) {
          soak.count('logged in');
          attached = true;
        } else if (reply.error === 'rate_limited' || reply.error === 'account_blocked' || reply.error === 'unavailable') {
          // Not expected (nobody fails a login as a fuzzer's user), but a limit, not a bug of the soak's:
          // try again (account_blocked closes the connection; the next round opens another).
          soak.count(`login ${String(reply.error)}`);
          await pause(50);
        } else {
          // already_logged_in included: the fuzzer logs in only after it read its session's
          // session_end (or a resume said the session ended), so the user is offline.
          return soak.fail(new Problem(`${user.user} could not log in: ${JSON.stringify(reply)}\n${wire.report(Date.now())}`));
        }
      }
      if (attempt > 50) return soak.fail(new Problem(`${user.user} could not attach in 50 attempts\n${wire.report(Date.now())}`));
    }

    while (wire.open && soak.budgetLeft()) {
      const window = r.int(1, WINDOW);
      await wire.until(() => !wire.open || wire.inFlight.length < window);
      if (!wire.open || !soak.budgetLeft()) break;
      // logout now and then: the session ends, and the fuzzer logs in again.
      const batch = lines(soak, r, window - wire.inFlight.length, () => (r.chance(0.002) ? line('logout') : fuzzerLine(r, user.user)));
      if (batch.length > window && r.chance(0.3)) batch.splice(r.int(0, 8), 0, line('logout'));
      wire.send(batch, r);
      if (r.chance(0.002)) {
        // A client that drops its connection with lines in flight, and resumes.
        soak.count('dropped by the client');
        wire.drop();
        break;
      }
      if (r.chance(0.003)) {
        // A client that stops reading a while.
        wire.pauseReading();
        await pause(r.int(20, 400));
        wire.resumeReading();
      }
      await tick();
    }
    await finish(soak, wire);
  }
}

/** A connection that never logs in: junk, failed logins, commands that need a session; reconnects when closed. */
async function junk(soak: Soak, index: number, r: Random): Promise<void> {
  // Its own loopback address, so its failed logins lock its address, not the fuzzers'.
  const from = `127.0.0.${2 + index}`;
  while (soak.budgetLeft()) {
    const wire = await soak.open(`junk#${index}`, from, () => undefined);
    while (wire.open && soak.budgetLeft()) {
      const window = r.int(1, WINDOW);
      await wire.until(() => !wire.open || wire.inFlight.length < window);
      if (!wire.open || !soak.budgetLeft()) break;
      wire.send(lines(soak, r, window - wire.inFlight.length, () => junkLine(r)), r);
      if (r.chance(0.003)) {
        // A line never finished: the server closes the connection after the line timeout, saying so.
        soak.count('unfinished line');
        wire.socket.write(`message luke never finished`);
        wire.closeDueBy = Date.now() + replicaOptions.lineTimeoutMs + STALL_MS;
        await wire.until(() => !wire.open);
        break;
      }
      if (r.chance(0.003)) {
        soak.count('dropped by the client');
        wire.drop();
        break;
      }
      await tick();
    }
    await finish(soak, wire);
  }
}

/** Watches every connection for a stall until the soak stops. */
function watchdog(soak: Soak, stats: () => unknown): () => void {
  const timer = setInterval(() => {
    const now = Date.now();
    for (const wire of soak.wires) {
      if (wire.stalled(now)) {
        soak.fail(new Problem(`STALL: lines unanswered for more than ${STALL_MS} ms on an open connection\n${wire.report(now)}\nserver: ${JSON.stringify(stats())}`));
        return;
      }
    }
  }, 200);
  return () => clearInterval(timer);
}

// ---------------------------------------------------------------------------

let redis: RedisServer;
let t: Awaited<ReturnType<typeof startTestReplica>>;

beforeAll(async () => {
  redis = await startRedis();
  const store = openState(redis.url).state;
  t = await startTestReplica(config, replicaOptions, { store, realClock: true });
  await importUsers(t.ctx, [junkTarget]);
});

afterAll(async () => {
  await t?.replica.close();
  await t?.ctx.state.close();
  await redis?.stop();
});

describe('TCP fuzz soak (issue 21)', () => {
  it(`answers every line of a long fuzz, in order, on six connections at once, and stays healthy (seed ${SEED})`, { timeout: MAX_SEND_MS + 60_000 }, async () => {
    const soak = new Soak(t.replica.tcpPort);
    const stopWatching = watchdog(soak, () => t.replica.tcpStats());
    const started = Date.now();
    const deadline = setTimeout(() => (soak.timeUp = true), MAX_SEND_MS);
    try {
      const runs = [
        ...fuzzUsers.map((u, k) => fuzzer(soak, k, u, new Random(SEED + 1000 * (k + 1)))),
        ...[0, 1, 2].map((k) => junk(soak, k, new Random(SEED + 1000 * (k + 11)))),
      ];
      const settled = await Promise.allSettled(runs);
      for (const s of settled) if (s.status === 'rejected') soak.fail(s.reason instanceof Error ? s.reason : new Error(String(s.reason)));
    } finally {
      clearTimeout(deadline);
      stopWatching();
      for (const wire of [...soak.wires]) wire.drop();
    }
    const seconds = (Date.now() - started) / 1000;
    const summary = `seed ${SEED}: ${soak.sent} lines, ${soak.replies} replies, ${soak.events} events in ${seconds.toFixed(1)} s; ${JSON.stringify(soak.counts)}`;
    if (soak.problem) {
      throw new Error(`${soak.problem.message}\n${summary}\nreplay: FUZZ_SEED=${SEED} npx vitest run test/transports/fuzz-soak.test.ts`);
    }
    console.log(summary);
    expect(soak.sent).toBeGreaterThan(1000);

    // Every client has closed: so has every connection on the server's side
    // (a connection left behind holds a file and a place under the caps).
    const closedBy = Date.now() + STALL_MS;
    while (t.replica.tcpStats().connections > 0 && Date.now() < closedBy) await pause(50);
    expect(t.replica.tcpStats(), `server-side connections left open after every client closed (seed ${SEED})`).toMatchObject({ connections: 0 });

    // Still healthy: a fresh login works and whoelse answers, after the
    // messages stored for the user while the soak ran.
    const check = new Soak(t.replica.tcpPort);
    const wire = await check.open('check', '127.0.0.1', () => undefined);
    const stopChecking = watchdog(check, () => t.replica.tcpStats());
    const r = new Random(SEED);
    const ask = async (text: string) => {
      const reply = await wire.request(line(text), r);
      if (check.problem) throw check.problem;
      if (!reply) throw new Error(`no reply to ${text}: the connection closed\n${wire.report(Date.now())}`);
      return reply;
    };
    try {
      expect(await ask(`login ${checker.user} ${checker.password}`)).toMatchObject({ ok: true, cmd: 'login' });
      expect(await ask('whoelse')).toMatchObject({ ok: true, cmd: 'whoelse' });
      expect(await ask('logout')).toMatchObject({ ok: true, cmd: 'logout' });
    } finally {
      stopChecking();
      wire.drop();
    }
  });
});
