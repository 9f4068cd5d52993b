import type { Socket } from 'node:net';

/**
 * The write side of a TCP connection: the lines written in one tick leave
 * together (one segment, not one per line), and the socket's own buffer is
 * the only one: `full` says when to stop taking more.
 */
export class Output {
  private corked = false;

  constructor(private readonly socket: Socket) {}

  /** Writes now or with the rest of this tick's writes; false once the socket is full (or gone). */
  write(data: string): boolean {
    if (!this.open) return false;
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

  get open(): boolean {
    return !this.socket.destroyed && !this.socket.writableEnded;
  }

  /** The socket holds a buffer's worth the client has not read yet. */
  get full(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Settles when the socket drains or closes. */
  drained(): Promise<void> {
    if (!this.full || !this.open) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Bytes written and not yet taken by the kernel. */
  get pending(): number {
    return this.socket.writableLength;
  }

  /** Sends what is written, then closes. */
  end(): void {
    this.socket.end();
  }
}
