import { createServer, type Server, type Socket } from 'node:net';
import { encode, withId } from '../handlers/events.js';
import { bindSession } from '../handlers/registry.js';
import { fail, texts } from '../handlers/replies.js';
import type { Caller, Context, Reply } from '../handlers/types.js';
import { formatCursor, parseCursor, type Cursor } from '../state/cursor.js';
import type { TrustedProxies } from './addresses.js';
import type { Live } from '../delivery/live.js';
import { recordReply, runCommand } from './commands.js';
import type { Metrics } from './metrics.js';
import { parseProxyV2 } from './proxy-protocol.js';
import { SessionStream } from '../delivery/session-stream.js';

export interface TcpOptions {
  ctx: Context;
  live: Live;
  proxies: TrustedProxies;
  metrics: Metrics;
  /** Bytes per second a connection may send (0 = no limit) and burst. */
  byteRate: number;
  byteBurst: number;
  /** Milliseconds a started line may stay unfinished before the connection is closed. */
  lineTimeoutMs: number;
}

const newline = 0x0a;
/**
 * Complete lines waiting to run before the socket is paused: a client that
 * pipelines faster than its commands run is held back by TCP, not buffered.
 */
const maxQueuedLines = 64;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The TCP adapter (SPEC section 4): command lines in, JSON lines out. Replies
 * go out in command order; once a session is attached (login or resume),
 * its events stream on the connection as they are appended. Three pieces in
 * a row: line framing in (bytes to lines, limits, PROXY header), the command
 * loop (lines to replies, in order), and the session's event stream out
 * (session-stream.ts). Both directions are bounded: the socket is paused
 * while too many lines wait, and nothing more is written while it is full.
 */
/** What the connections of one TCP server hold in memory right now. */
export interface TcpStats {
  connections: number;
  /** Bytes written and not yet taken by the kernel, over all connections. */
  outputBytes: number;
  /** Command lines received and not yet run, over all connections. */
  queuedLines: number;
  /** Connections whose socket is paused because their lines piled up. */
  paused: number;
}

/**
 * Each socket's own buffer, both ways: what the server holds for a client
 * that does not read is about this much, whatever the runtime's default
 * (16 KiB on Node 20, 64 KiB from Node 22 on).
 */
export const socketBufferBytes = 16 * 1024;

export function createTcpServer(options: TcpOptions): { server: Server; shutdown(): void; stats(): TcpStats } {
  const connections = new Set<Connection>();
  const server = createServer({ highWaterMark: socketBufferBytes }, (socket) => {
    const connection = new Connection(socket, options);
    connections.add(connection);
    options.metrics.tcpConnections.inc();
    socket.once('close', () => {
      connections.delete(connection);
      options.metrics.tcpConnections.dec();
      connection.detach();
    });
  });
  return {
    server,
    /** Tells every client the server is going away; their sessions stay resumable. */
    shutdown() {
      for (const connection of connections) connection.shutdown();
    },
    stats() {
      const stats = { connections: connections.size, outputBytes: 0, queuedLines: 0, paused: 0 };
      for (const connection of connections) connection.addStats(stats);
      return stats;
    },
  };
}

class Connection {
  private readonly caller: Caller;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Discarding the rest of a line that went over the limit. */
  private discarding = false;
  /** Complete lines waiting to run, or the error reply a bad line gets. */
  private readonly lines: (string | Reply)[] = [];
  private busy = false;
  /** A command is running: its reply has not been written yet. */
  private inCommand = false;
  /** session_end was written; close once the running command's reply is out. */
  private ending = false;
  private failedLogins = 0;
  private proxyChecked: boolean;
  private lineTimer?: NodeJS.Timeout;
  private tokens: number;
  private tokensAt = Date.now();
  private closing = false;
  private paused = false;
  /** Events were trimmed before they could be written: the next reply says so. */
  private gapPending = false;
  /** Writes of this tick go out together when it ends. */
  private corked = false;
  private stream?: SessionStream;

  constructor(
    private readonly socket: Socket,
    private readonly o: TcpOptions,
  ) {
    const peer = socket.remoteAddress ?? 'unknown';
    this.caller = { address: peer };
    this.proxyChecked = !o.proxies.trusts(peer);
    this.tokens = o.byteBurst;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => socket.destroy());
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    if (!this.withinByteRate(chunk.length)) {
      // SPEC section 6: a limit is named before the connection is closed.
      this.closeForLimit('byte_rate', fail('', 'rate_limited', texts.byteRateLimited));
      this.o.metrics.rateLimited.inc({ limit: 'bytes' });
      return;
    }
    if (!this.proxyChecked) {
      chunk = this.readProxyHeader(chunk) as Buffer;
      if (!chunk) return;
    }
    let start = 0;
    for (let nl = chunk.indexOf(newline); nl >= 0; nl = chunk.indexOf(newline, start)) {
      this.takeLine(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) this.keepPartial(chunk.subarray(start));
    this.armLineTimer();
    if (this.lines.length >= maxQueuedLines && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    void this.runLines();
  }

  private onDrain(): void {
    this.stream?.resume();
    void this.runLines();
  }

  /** Collects a complete line (the bytes before a newline) into the queue. */
  private takeLine(tail: Buffer): void {
    const bytes = this.pendingBytes + tail.length;
    const line = this.pending.length ? Buffer.concat([...this.pending, tail]) : tail;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.discarding || bytes > this.o.ctx.config.maxLineBytes) {
      this.discarding = false;
      this.lines.push(fail('', 'too_long', texts.lineTooLong(this.o.ctx.config.maxLineBytes)));
      return;
    }
    let text: string;
    try {
      text = utf8.decode(line);
    } catch {
      this.lines.push(fail('', 'invalid_command', texts.invalidCharacters));
      return;
    }
    this.lines.push(text.endsWith('\r') ? text.slice(0, -1) : text);
  }

  private keepPartial(part: Buffer): void {
    if (this.discarding) return;
    this.pending.push(Buffer.from(part));
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.o.ctx.config.maxLineBytes) {
      // Answer at the newline, and keep no more of this line in memory.
      this.discarding = true;
      this.pending = [];
      this.pendingBytes = 0;
    }
  }

  /** A line that stays unfinished too long closes the connection. */
  private armLineTimer(): void {
    const unfinished = this.pendingBytes > 0 || this.discarding;
    if (!unfinished) {
      clearTimeout(this.lineTimer);
      this.lineTimer = undefined;
    } else if (!this.lineTimer) {
      this.lineTimer = setTimeout(
        () => this.closeForLimit('line_timeout', fail('', 'too_long', texts.lineTimedOut(this.o.lineTimeoutMs / 1000))),
        this.o.lineTimeoutMs,
      );
      this.lineTimer.unref();
    }
  }

  private withinByteRate(bytes: number): boolean {
    if (this.o.byteRate <= 0) return true;
    const now = Date.now();
    this.tokens = Math.min(this.o.byteBurst, this.tokens + ((now - this.tokensAt) * this.o.byteRate) / 1000);
    this.tokensAt = now;
    this.tokens -= bytes;
    return this.tokens >= 0;
  }

  /** A trusted proxy starts the connection with a PROXY v2 header naming the client. */
  private readProxyHeader(chunk: Buffer): Buffer | null {
    const buffered = this.pending.length ? Buffer.concat([...this.pending, chunk]) : chunk;
    const header = parseProxyV2(buffered);
    if (header.state === 'incomplete') {
      this.pending = [buffered];
      this.pendingBytes = buffered.length;
      return null;
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.proxyChecked = true;
    if (header.state === 'invalid') return buffered;
    if (header.address) this.caller.address = header.address;
    return buffered.subarray(header.length);
  }

  /**
   * Runs queued lines one at a time, so replies keep command order; waits
   * while the socket is full, so a client that sends without reading is
   * held back rather than answered into memory.
   */
  private async runLines(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.runQueued();
    } catch (err) {
      this.o.ctx.log?.('error', 'command loop failed; closing the connection', { user: this.caller.session?.user, err });
      this.socket.destroy();
    } finally {
      this.busy = false;
    }
  }

  private async runQueued(): Promise<void> {
    while (this.lines.length && !this.closing && !this.socket.writableNeedDrain) {
      if (this.paused && this.lines.length <= maxQueuedLines / 4) {
        this.paused = false;
        this.socket.resume();
      }
      const line = this.lines.shift()!;
      if (line === 'ping') {
        this.write('{"type":"pong"}\n');
        continue;
      }
      this.inCommand = true;
      const reply = await this.run(line);
      if (this.gapPending) {
        this.gapPending = false;
        reply.gap = true;
      }
      this.write(JSON.stringify(reply) + '\n');
      this.inCommand = false;
      if (this.ending) this.close();
      else await this.afterReply(reply);
    }
    if (this.paused && this.lines.length <= maxQueuedLines / 4 && !this.closing) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private async run(line: string | Reply): Promise<Reply> {
    if (typeof line === 'string') return runCommand(this.o.ctx, this.o.metrics, 'tcp', this.caller, line);
    recordReply(this.o.ctx, this.o.metrics, 'tcp', this.caller, line, 0);
    return line;
  }

  private async afterReply(reply: Reply): Promise<void> {
    if ((reply.cmd === 'login' || reply.cmd === 'resume') && reply.ok) {
      const cursor = parseCursor(String(reply.cursor));
      if (cursor) await this.attach(String(reply.user), String(reply.token), cursor);
      return;
    }
    if (reply.cmd !== 'login') return;
    if (reply.error === 'invalid_password' || reply.error === 'invalid_user') this.failedLogins++;
    if (reply.error === 'account_blocked' || this.failedLogins >= this.o.ctx.config.loginFailures) {
      this.o.metrics.closes.inc({ reason: 'login_failures' });
      this.close();
    }
  }

  /** Binds a session to this connection and streams its events from `cursor`. */
  private async attach(user: string, token: string, cursor: Cursor): Promise<void> {
    const stream = new SessionStream(this.o.ctx, this.o.live, user, cursor, {
      write: (line) => {
        this.o.metrics.eventsDelivered.inc({ transport: 'tcp' });
        return this.write(line);
      },
      // session_end is a session's last event: the connection closes after
      // it, and after the reply of a command in flight (logout's own reply).
      ended: () => {
        if (this.inCommand) this.ending = true;
        else this.close();
      },
      gap: () => {
        this.gapPending = true;
      },
      failed: (err) => {
        this.o.metrics.closes.inc({ reason: 'store_error' });
        this.o.ctx.log?.('warn', 'event read failed; closing the connection so the client resumes', { user, err });
        this.close();
      },
    });
    this.stream = stream;
    this.o.metrics.tcpSessions.inc();
    this.caller.session = { user, token };
    this.caller.bound = bindSession(this.o.ctx, () => stream.cursor);
    try {
      await stream.start();
    } catch (err) {
      this.o.metrics.closes.inc({ reason: 'store_error' });
      this.o.ctx.log?.('warn', 'wake-up subscription failed; closing the connection so the client resumes', { user, err });
      // end(), not destroy(): the reply already written still reaches the client.
      this.close();
    }
  }

  /** Writes now or, within a tick, together with the other writes of that tick; false once the socket is full. */
  private write(data: string): boolean {
    if (this.socket.destroyed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    return this.socket.write(data);
  }

  private close(): void {
    this.closing = true;
    this.detach();
    this.socket.end();
  }

  /** Names the limit in a reply (SPEC section 6), then closes; the session stays resumable. */
  private closeForLimit(reason: string, reply: Reply): void {
    if (this.closing) return;
    this.o.metrics.closes.inc({ reason });
    this.o.ctx.log?.('info', 'connection closed for a limit', { reason, user: this.caller.session?.user, address: this.caller.address });
    this.write(JSON.stringify(reply) + '\n');
    this.close();
  }

  /** The connection is gone: stop its stream and remember how far it got, for a resume without a cursor. */
  detach(): void {
    clearTimeout(this.lineTimer);
    const { stream } = this;
    if (!stream) return;
    this.stream = undefined;
    this.o.metrics.tcpSessions.dec();
    stream.stop();
    const session = this.caller.session;
    if (session && !this.ending) this.o.ctx.state.saveCursor(session.user, session.token, stream.cursor).catch(() => undefined);
  }

  addStats(stats: TcpStats): void {
    stats.outputBytes += this.socket.writableLength;
    stats.queuedLines += this.lines.length;
    if (this.paused) stats.paused++;
  }

  shutdown(): void {
    if (this.closing) return;
    if (this.stream) this.write(withId(encode.sessionEnd('shutdown', Date.now()), formatCursor(this.stream.cursor)) + '\n');
    this.close();
  }
}
