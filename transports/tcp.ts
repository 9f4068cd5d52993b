import { createServer, type Server, type Socket } from 'node:net';
import { encode, withId } from '../handlers/events.js';
import { dispatch } from '../handlers/registry.js';
import { fail, texts } from '../handlers/replies.js';
import type { Caller, Context, Reply } from '../handlers/types.js';
import type { TrustedProxies } from './addresses.js';
import type { Live } from './live.js';
import type { Metrics } from './metrics.js';
import { parseProxyV2 } from './proxy-protocol.js';

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
  /** Bytes queued for a client that does not read before it is cut off. */
  maxQueuedBytes: number;
}

const newline = 0x0a;
const eventsPerRead = 200;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The TCP adapter (SPEC section 4): command lines in, JSON lines out. Replies
 * go out in command order; once a session is attached (login or resume),
 * its events stream on the connection as they are appended.
 */
export function createTcpServer(options: TcpOptions): { server: Server; shutdown(): void } {
  const connections = new Set<Connection>();
  const server = createServer((socket) => {
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

  // Live delivery state: events up to `cursor` have been written.
  private cursor = 0;
  private user = '';
  private stopListening?: () => void;
  private reading = false;
  private readAgain = false;

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
    socket.on('error', () => socket.destroy());
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    if (!this.withinByteRate(chunk.length)) {
      this.socket.destroy();
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
    this.drain();
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
      this.lineTimer = setTimeout(() => this.socket.destroy(), this.o.lineTimeoutMs);
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

  /** Runs queued lines one at a time, so replies keep command order. */
  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    while (this.lines.length && !this.closing) {
      const line = this.lines.shift()!;
      this.o.metrics.commands.inc();
      if (line === 'ping') {
        this.write('{"type":"pong"}\n');
        continue;
      }
      this.inCommand = true;
      const reply = await this.run(line);
      this.write(JSON.stringify(reply) + '\n');
      this.inCommand = false;
      if (this.ending) this.close();
      else await this.afterReply(reply);
    }
    this.busy = false;
  }

  private run(line: string | Reply): Promise<Reply> {
    if (typeof line !== 'string') return Promise.resolve(line);
    if (this.caller.session) this.caller.cursor = this.cursor;
    return dispatch(this.o.ctx, this.caller, line);
  }

  private async afterReply(reply: Reply): Promise<void> {
    if ((reply.cmd === 'login' || reply.cmd === 'resume') && reply.ok) {
      await this.attach(String(reply.user), String(reply.token), Number(reply.cursor));
      return;
    }
    if (reply.cmd !== 'login') return;
    if (reply.error === 'invalid_password' || reply.error === 'invalid_user') this.failedLogins++;
    if (reply.error === 'account_blocked' || this.failedLogins >= this.o.ctx.config.loginFailures) this.close();
  }

  /** Binds a session to this connection and streams its events from `cursor`. */
  private async attach(user: string, token: string, cursor: number): Promise<void> {
    this.caller.session = { user, token };
    this.user = user;
    this.cursor = cursor;
    this.stopListening = await this.o.live.listen(user, (id, json) => this.onEvent(id, json));
    await this.readEvents();
  }

  /**
   * A wake-up carries the new event itself: when it is the very next one,
   * write it without reading the inbox; otherwise catch up by reading.
   */
  private onEvent(id: number, json: string): void {
    if (id === 0) {
      void this.readEvents();
      return;
    }
    if (!this.reading && id === this.cursor + 1) {
      this.deliver(id, json);
    } else if (id > this.cursor) {
      void this.readEvents();
    }
  }

  private async readEvents(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.readAgain = false;
        const page = await this.o.ctx.state.read(this.user, this.cursor, eventsPerRead);
        for (const event of page.events) if (event.id > this.cursor) this.deliver(event.id, event.json);
        if (page.events.length === eventsPerRead) this.readAgain = true;
      } while (this.readAgain && !this.closing);
    } catch (err) {
      this.o.ctx.log?.('warn', 'inbox read failed; closing the connection so the client resumes', { error: String(err) });
      this.socket.destroy();
    } finally {
      this.reading = false;
    }
  }

  private deliver(id: number, json: string): void {
    if (this.closing || this.ending) return;
    this.cursor = id;
    this.write(withId(json, id) + '\n');
    this.o.metrics.eventsDelivered.inc();
    // session_end is a session's last event: the connection closes after it,
    // and after the reply of a command in flight (logout's own reply).
    if (json.startsWith('{"type":"session_end"')) {
      if (this.inCommand) this.ending = true;
      else this.close();
    }
  }

  private write(data: string): void {
    if (this.socket.destroyed) return;
    this.socket.write(data);
    if (this.socket.writableLength > this.o.maxQueuedBytes) {
      // A client that does not read is cut off; its session stays resumable.
      this.socket.destroy();
    }
  }

  private close(): void {
    this.closing = true;
    this.detach();
    this.socket.end();
  }

  detach(): void {
    clearTimeout(this.lineTimer);
    this.stopListening?.();
    this.stopListening = undefined;
  }

  shutdown(): void {
    if (this.closing) return;
    if (this.caller.session) this.write(withId(encode.sessionEnd('shutdown', Date.now()), this.cursor) + '\n');
    this.close();
  }
}
