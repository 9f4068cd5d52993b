import { takeToken, type Bucket } from '../../handlers/bucket.js';
import { fail, texts } from '../../handlers/replies.js';
import type { Reply } from '../../handlers/types.js';
import { parseProxyV2 } from '../proxy-protocol.js';

export interface FramerLimits {
  maxLineBytes: number;
  /** Milliseconds a started line may stay unfinished. */
  lineTimeoutMs: number;
  /** Bytes per second the client may send (0 = no limit), and the burst. */
  byteRate: number;
  byteBurst: number;
  /** The peer is a trusted proxy: the first bytes are a PROXY v2 header naming the client. */
  proxyHeader: boolean;
}

/** A limit that ends the connection: the reply that names it (SPEC section 6), and why, for metrics. */
export interface LimitHit {
  reason: 'byte_rate' | 'line_timeout' | 'login_timeout';
  reply: Reply;
}

/**
 * What the framer passes on, one item per line: the command line (without
 * its newline or a trailing CR), or the reply a line gets that is not one
 * (too long, not UTF-8).
 */
export type Framed = string | Reply;

const newline = 0x0a;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Where the framer's output goes. */
export interface FramerSink {
  /** A complete line, or the reply a line gets that is not one. */
  line(item: Framed): void;
  /** A limit that ends the connection, at once (not queued behind the lines before it). */
  limit(hit: LimitHit): void;
  /** The client's address, from a trusted proxy's PROXY header. */
  address(address: string): void;
}

/**
 * Bytes in, lines out (SPEC sections 4 and 6): the first piece of a TCP
 * connection. It reads the PROXY header a trusted proxy sends first, splits
 * lines at newlines whatever pieces the bytes come in, refuses a line over
 * the limit without keeping it in memory, and meters the bytes through a
 * token bucket.
 *
 * A plain class with a sink rather than a Transform stream, which costs a
 * Writable and a Readable state machine and a promise per line
 * (docs/DESIGN.md, "The TCP connection in three pieces"); backpressure is
 * the command loop's (it pauses the socket while lines pile up).
 */
export class LineFramer {
  private mode: 'header' | 'line' | 'discard' | 'closed';
  /** The unfinished line's pieces (or the PROXY header's). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly bucket: Bucket;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly limits: FramerLimits,
    private readonly sink: FramerSink,
  ) {
    this.mode = limits.proxyHeader ? 'header' : 'line';
    this.bucket = { tokens: limits.byteBurst, tokensAt: Date.now() };
  }

  /** Takes the bytes of one socket read. */
  push(chunk: Buffer): void {
    if (this.mode === 'closed') return;
    if (!takeToken(this.bucket, Date.now(), this.limits.byteRate, this.limits.byteBurst, chunk.length)) {
      this.hitLimit('byte_rate', fail('', 'rate_limited', texts.byteRateLimited));
      return;
    }
    let bytes: Buffer | null = chunk;
    if (this.mode === 'header') bytes = this.readHeader(chunk);
    if (bytes) this.split(bytes);
    this.armTimer();
  }

  /** Takes nothing more (the connection is closing). */
  stop(): void {
    this.mode = 'closed';
    this.pending = [];
    clearTimeout(this.timer);
  }

  private split(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(newline); nl >= 0; nl = chunk.indexOf(newline, start)) {
      this.sink.line(this.line(chunk.subarray(start, nl)));
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
  }

  /** A complete line: its tail is the bytes before the newline. */
  private line(tail: Buffer): Framed {
    const bytes = this.pendingBytes + tail.length;
    const whole = this.pending.length ? Buffer.concat([...this.pending, tail]) : tail;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.mode === 'discard' || bytes > this.limits.maxLineBytes) {
      this.mode = 'line';
      return fail('', 'too_long', texts.lineTooLong(this.limits.maxLineBytes));
    }
    let text: string;
    try {
      text = utf8.decode(whole);
    } catch {
      return fail('', 'invalid_command', texts.invalidCharacters);
    }
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  }

  /** Keeps the start of an unfinished line; past the limit, keeps nothing and answers at its newline. */
  private keep(part: Buffer): void {
    if (this.mode === 'discard') return;
    this.pending.push(Buffer.from(part));
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.limits.maxLineBytes) {
      this.mode = 'discard';
      this.pending = [];
      this.pendingBytes = 0;
    }
  }

  /** The PROXY v2 header, once complete; returns the bytes after it, or null while it is incomplete. */
  private readHeader(chunk: Buffer): Buffer | null {
    const buffered = this.pending.length ? Buffer.concat([...this.pending, chunk]) : chunk;
    const header = parseProxyV2(buffered);
    if (header.state === 'incomplete') {
      this.pending = [buffered];
      this.pendingBytes = buffered.length;
      return null;
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.mode = 'line';
    if (header.state === 'invalid') return buffered;
    if (header.address) this.sink.address(header.address);
    return buffered.subarray(header.length);
  }

  /** A line left unfinished for `lineTimeoutMs` ends the connection. */
  private armTimer(): void {
    const unfinished = this.pendingBytes > 0 || this.mode === 'discard';
    if (!unfinished) {
      clearTimeout(this.timer);
      this.timer = undefined;
    } else if (!this.timer) {
      this.timer = setTimeout(
        () => this.hitLimit('line_timeout', fail('', 'too_long', texts.lineTimedOut(this.limits.lineTimeoutMs / 1000))),
        this.limits.lineTimeoutMs,
      );
      this.timer.unref();
    }
  }

  private hitLimit(reason: LimitHit['reason'], reply: Reply): void {
    if (this.mode === 'closed') return;
    this.stop();
    this.sink.limit({ reason, reply });
  }
}
