import type { Socket } from 'node:net';
import type { Reply } from '../../handlers/types.js';
import type { Framed } from './line-framer.js';
import type { Output } from './output.js';

/** What the loop runs lines through: the connection, which knows its caller and session. */
export interface Commands {
  /** The reply to one framed line: the command's, or the refusal the framer made. */
  run(item: Framed): Promise<Reply>;
  /** Sends a reply and does what it asks; false when the connection is closing and no more lines run. */
  answer(reply: Reply): Promise<boolean>;
  /** The loop failed (a bug): the connection closes. */
  failed(err: unknown): void;
}

/** Lines waiting that pause the socket, and how few resume it. */
const pauseAt = 16;
const resumeAt = 4;

/**
 * The second piece of a TCP connection: lines to replies, one command at a
 * time, so replies keep command order. A line runs only when the previous
 * reply is out and the socket has room for more; while lines pile up
 * (`pauseAt`), the socket is paused, so a client that sends without reading
 * is held back by TCP, not read into this process's memory.
 */
export class CommandLoop {
  private readonly queue: Framed[] = [];
  private running = false;

  constructor(
    private readonly socket: Socket,
    private readonly output: Output,
    private readonly commands: Commands,
  ) {}

  add(item: Framed): void {
    this.queue.push(item);
    if (this.queue.length >= pauseAt && !this.socket.isPaused()) this.socket.pause();
    if (!this.running) void this.run();
  }

  /** Lines received and not yet run. */
  get queued(): number {
    return this.queue.length;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
        if (this.queue.length <= resumeAt && this.socket.isPaused()) this.socket.resume();
        if (this.output.full) await this.output.drained();
        if (!this.output.open || !(await this.commands.answer(await this.commands.run(item)))) {
          this.queue.length = 0;
          return;
        }
      }
    } catch (err) {
      this.queue.length = 0;
      this.commands.failed(err);
    } finally {
      this.running = false;
    }
  }
}
