import { encode } from '../../handlers/events.js';
import { bindSession } from '../../handlers/registry.js';
import type { Caller, Context } from '../../handlers/types.js';
import { eventLine } from '../../delivery/feed.js';
import type { Live } from '../../delivery/live.js';
import { SessionStream } from '../../delivery/session-stream.js';
import type { Cursor } from '../../state/cursor.js';
import type { Metrics } from '../metrics.js';
import type { Output } from './output.js';

/** What the connection does when the session's stream says so. */
export interface HeldSessionEvents {
  /** The session's session_end was written: its last event. */
  ended(): void;
  /** The store failed under the stream: close, so the client resumes elsewhere. */
  failed(): void;
}

/**
 * The third piece of a TCP connection: the session it holds after a login
 * or resume, its events streamed to the socket (delivery/session-stream.ts),
 * and the caller's fields that let its commands skip the token check in the
 * store (handlers/registry.ts, BoundSession).
 */
export class HeldSession {
  private readonly stream: SessionStream;
  private readonly onStartFailed: (err: unknown) => void;

  constructor(
    private readonly ctx: Context,
    live: Live,
    private readonly metrics: Metrics,
    out: Output,
    caller: Caller,
    readonly user: string,
    private readonly token: string,
    cursor: Cursor,
    events: HeldSessionEvents,
  ) {
    const failed = (message: string) => (err: unknown) => {
      metrics.closes.inc({ reason: 'store_error' });
      ctx.log?.('warn', message, { user, err });
      events.failed();
    };
    this.stream = new SessionStream(ctx, live, user, cursor, {
      write: (line) => {
        metrics.eventsDelivered.inc({ transport: 'tcp' });
        return out.write(line);
      },
      ended: () => events.ended(),
      failed: failed('event read failed; closing the connection so the client resumes'),
    });
    this.onStartFailed = failed('wake-up subscription failed; closing the connection so the client resumes');
    metrics.tcpSessions.inc();
    caller.session = { user, token };
    caller.bound = bindSession(ctx, () => this.stream.cursor);
  }

  /** Subscribes and writes what the session has not seen yet. */
  async start(): Promise<void> {
    await this.stream.start().catch(this.onStartFailed);
  }

  /** The socket drained: the stream goes on. */
  resume(): void {
    this.stream.resume();
  }

  /** The line that tells the client this replica is going away (not stored: its id is the cursor it has). */
  shutdownLine(): string {
    return eventLine(encode.sessionEnd('shutdown', Date.now()).json, this.stream.cursor) + '\n';
  }

  /** The connection is gone: stops the stream and remembers how far it got, for a resume without a cursor. */
  release(): void {
    this.metrics.tcpSessions.dec();
    this.stream.stop();
    this.ctx.state.saveCursor(this.user, this.token, this.stream.cursor).catch(() => undefined);
  }
}
