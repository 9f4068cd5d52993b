import type { Socket } from 'node:net';
import { fail, texts, wireReply } from '../../handlers/replies.js';
import type { Caller, Reply } from '../../handlers/types.js';
import type { Cursor } from '../../state/cursor.js';
import { recordReply, runCommand } from '../commands.js';
import { CommandLoop } from './command-loop.js';
import { HeldSession } from './held-session.js';
import { LineFramer, type Framed, type LimitHit } from './line-framer.js';
import { Output } from './output.js';
import type { TcpOptions } from './server.js';

/**
 * One TCP connection (SPEC section 4): three pieces in a row, each its own
 * file. The line framer turns bytes into lines under the limits; the
 * command loop runs them one at a time; once a session is attached (a reply
 * whose effects say so), its event stream (delivery/session-stream.ts)
 * writes its events as they are appended. This class only wires them
 * together and acts on what replies ask (attach, count a failed login,
 * close); it never reads a reply's text or verb.
 */
/** How long a connection the server ended may take to close its side before it is destroyed. */
const closeGraceMs = 5000;

export class Connection {
  readonly caller: Caller;
  private readonly framer: LineFramer;
  private readonly loop: CommandLoop;
  private readonly out: Output;
  private session?: HeldSession;
  /** `running`: a command's reply is not out yet; `ending`: the session ended meanwhile, close after that reply. */
  private phase: 'idle' | 'running' | 'ending' | 'closed' = 'idle';
  private failedLogins = 0;
  /** Closes a connection that has not logged in (or resumed) in time. */
  private loginTimer?: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly o: TcpOptions,
  ) {
    const peer = socket.remoteAddress ?? 'unknown';
    this.caller = { address: peer };
    this.out = new Output(socket);
    this.loop = new CommandLoop(socket, this.out, this);
    const limits = {
      maxLineBytes: o.ctx.config.maxLineBytes,
      lineTimeoutMs: o.lineTimeoutMs,
      byteRate: o.byteRate,
      byteBurst: o.byteBurst,
      proxyHeader: o.proxies.trusts(peer),
    };
    this.framer = new LineFramer(limits, {
      line: (item) => this.loop.add(item),
      limit: (hit) => this.closeForLimit(hit),
      address: (address) => (this.caller.address = address),
    });
    if (o.loginTimeoutMs > 0) {
      this.loginTimer = setTimeout(
        () => this.closeForLimit({ reason: 'login_timeout', reply: fail('', 'not_logged_in', texts.loginTimedOut(o.loginTimeoutMs / 1000)) }),
        o.loginTimeoutMs,
      );
      this.loginTimer.unref();
    }
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.framer.push(chunk));
    socket.on('drain', () => this.session?.resume());
    socket.on('error', () => socket.destroy());
  }

  async run(item: Framed): Promise<Reply> {
    this.phase = 'running';
    if (typeof item === 'string') return runCommand(this.o.ctx, this.o.metrics, 'tcp', this.caller, item);
    recordReply(this.o.ctx, this.o.metrics, 'tcp', this.caller, item, 0);
    return item;
  }

  failed(err: unknown): void {
    if (this.phase === 'closed') return;
    this.o.ctx.log?.('error', 'command loop failed; closing the connection', { user: this.caller.session?.user, err });
    this.phase = 'closed';
    this.detach();
    this.socket.destroy();
  }

  async answer(reply: Reply): Promise<boolean> {
    // Closed while the command ran (a limit, the client gone): a session its
    // reply opened is never held, so nothing is left listening.
    if (this.closed) return false;
    this.out.write(JSON.stringify(wireReply(reply)) + '\n');
    const ending = this.phase === 'ending';
    if (this.phase === 'running') this.phase = 'idle';
    if (ending) this.close();
    else await this.act(reply);
    return !this.closed;
  }

  private get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Does what a reply asks beside being sent (handlers/types.ts, Effects). */
  private async act({ effects }: Reply): Promise<void> {
    if (!effects) return;
    if (effects.attach) {
      const { user, token, cursor } = effects.attach;
      await this.attach(user, token, cursor);
      return;
    }
    if (effects.failedLogin) this.failedLogins++;
    if (effects.close || this.failedLogins >= this.o.ctx.config.loginFailures) {
      this.o.metrics.closes.inc({ reason: 'login_failures' });
      this.close();
    }
  }

  /** Holds the session on this connection and streams its events from `cursor`. */
  private async attach(user: string, token: string, cursor: Cursor): Promise<void> {
    clearTimeout(this.loginTimer);
    this.session = new HeldSession(this.o.ctx, this.o.live, this.o.metrics, this.out, this.caller, user, token, cursor, {
      // session_end is a session's last event: the connection closes after
      // it, and after the reply of a command in flight (logout's own reply).
      ended: () => {
        if (this.phase === 'running') this.phase = 'ending';
        else this.close();
      },
      // end(), not destroy(): the reply already written still reaches the client.
      failed: () => this.close(),
    });
    await this.session.start();
  }

  private close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.detach();
    this.framer.stop();
    this.out.end();
    // The socket may be paused (lines piled up): read on, discarding, so the
    // client's FIN is seen and the socket really closes; a client that never
    // sends one is cut off once the end had time to be read.
    this.socket.resume();
    const cutOff = setTimeout(() => this.socket.destroy(), closeGraceMs);
    cutOff.unref();
    this.socket.once('close', () => clearTimeout(cutOff));
  }

  /** Names the limit in a reply (SPEC section 6), then closes; the session stays resumable. */
  private closeForLimit({ reason, reply }: LimitHit): void {
    if (this.phase === 'closed') return;
    this.o.metrics.closes.inc({ reason });
    if (reason === 'byte_rate') this.o.metrics.rateLimited.inc({ limit: 'bytes' });
    this.o.ctx.log?.('info', 'connection closed for a limit', { reason, user: this.caller.session?.user, address: this.caller.address });
    this.out.write(JSON.stringify(reply) + '\n');
    this.close();
  }

  /** The socket closed: nothing more runs. */
  gone(): void {
    this.phase = 'closed';
    this.framer.stop();
    this.detach();
  }

  private detach(): void {
    clearTimeout(this.loginTimer);
    this.session?.release();
    this.session = undefined;
  }

  /** Tells the client the server is going away; its session stays resumable. */
  shutdown(): void {
    if (this.phase === 'closed') return;
    if (this.session) this.out.write(this.session.shutdownLine());
    this.close();
  }

  get queuedLines(): number {
    return this.loop.queued;
  }

  get pendingOutput(): number {
    return this.out.pending;
  }

  /** Not reading the socket because lines piled up. */
  get paused(): boolean {
    return this.phase !== 'closed' && this.socket.isPaused();
  }
}
