import type { Context } from '../handlers/types.js';
import { Cursor, cursorText } from '../state/cursor.js';
import { endsSession, eventLine, readFeed, type OutEvent } from './feed.js';
import type { Live, Wake } from './live.js';

/** Where a session's events go: a TCP connection. */
export interface StreamSink {
  /** Writes one line; false when the socket is full (wait for `resume`). */
  write(line: string): boolean;
  /** The session's session_end was written: its last event. */
  ended(): void;
  /** Reading the store failed: the connection should close so the client resumes. */
  failed(err: unknown): void;
}

const eventsPerRead = 200;

/**
 * A session's events, out to one connection from its cursor: an up-to-date
 * session writes each event straight from its wake-up; one that is behind
 * (just attached, a wake-up it cannot place, a full socket) reads both
 * streams after its cursor until it is up to date again. The streams are the
 * buffer: when the socket is full nothing more is taken from them until it
 * drains, so a client that does not read costs about a socket buffer.
 */
export class SessionStream {
  private stopListening?: () => void;
  /** A catch-up read is running; wake-ups only ask for another round. */
  private reading = false;
  private readAgain = false;
  /** The inbox may hold events after the cursor that no wake-up carried. */
  private inboxBehind = true;
  /** The socket is full: wait for `resume`. */
  private full = false;
  private stopped = false;
  /**
   * The cursor, as its two positions: it moves on every event, and a Cursor
   * made per event and kept until the next one outlives V8's young
   * generation, so thousands of sessions under a wave of presence would
   * fill the old generation with dead cursors.
   */
  private inbox: number;
  private lobby: number;

  constructor(
    private readonly ctx: Context,
    private readonly live: Live,
    private readonly user: string,
    cursor: Cursor,
    private readonly sink: StreamSink,
  ) {
    this.inbox = cursor.inbox;
    this.lobby = cursor.lobby;
  }

  /** How far the session's client has been sent its events. */
  get cursor(): Cursor {
    return new Cursor(this.inbox, this.lobby);
  }

  /** Subscribes, then catches up from the cursor (in that order, so nothing falls between). */
  async start(): Promise<void> {
    const stop = await this.live.listen(this.user, (wake) => this.onWake(wake));
    if (this.stopped) {
      stop();
      return;
    }
    this.stopListening = stop;
    await this.catchUp();
  }

  stop(): void {
    this.stopped = true;
    this.stopListening?.();
    this.stopListening = undefined;
  }

  /** The socket drained: go on from the cursor. */
  resume(): void {
    if (!this.full) return;
    this.full = false;
    void this.catchUp();
  }

  private onWake(wake: Wake): void {
    if (this.stopped) return;
    const upToDate = !this.reading && !this.full;
    if (wake.kind === 'inbox') {
      const { event } = wake;
      if (event.id <= this.inbox) return;
      if (upToDate && !this.inboxBehind && event.id === this.inbox + 1) {
        this.inbox = event.id;
        this.write(event.json, endsSession(event));
        return;
      }
      this.inboxBehind = true;
    } else if (wake.kind === 'lobby') {
      const { event } = wake;
      if (event.id <= this.lobby) return;
      if (upToDate && event.id === this.lobby + 1) {
        this.lobby = event.id;
        if (!event.skip.includes(this.user)) this.write(event.json);
        return;
      }
    } else {
      this.inboxBehind = true;
    }
    if (!this.full) void this.catchUp();
  }

  /** Writes one event read from the store; false if the stream must pause (full socket, or it was the session's last). */
  private emit(event: OutEvent, last = false): boolean {
    this.inbox = event.cursor.inbox;
    this.lobby = event.cursor.lobby;
    return this.write(event.json, last);
  }

  /** Writes an event at the cursor as it now stands; false if the stream must pause. */
  private write(json: string, last = false): boolean {
    const accepted = this.sink.write(eventLine(json, cursorText(this.inbox, this.lobby)) + '\n');
    if (last) {
      this.stop();
      this.sink.ended();
      return false;
    }
    if (!accepted) this.full = true;
    return accepted;
  }

  private async catchUp(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.readAgain = false;
        const page = await readFeed(this.ctx, this.live, this.user, this.cursor, eventsPerRead, this.inboxBehind ? 'read' : 'unchanged');
        if (this.stopped) return;
        this.inboxBehind = false;
        let written = 0;
        for (const event of page.events) {
          written++;
          if (!this.emit(event, page.ended && written === page.events.length)) break;
        }
        if (this.stopped) return;
        if (written < page.events.length || this.full) {
          // Stopped part-way: the rest is read again from the cursor on drain.
          this.inboxBehind = true;
          return;
        }
        this.inbox = page.cursor.inbox;
        this.lobby = page.cursor.lobby;
        if (page.more) {
          this.inboxBehind = true;
          this.readAgain = true;
        }
      } while (this.readAgain && !this.stopped && !this.full);
    } catch (err) {
      if (!this.stopped) this.sink.failed(err);
    } finally {
      this.reading = false;
    }
  }
}
