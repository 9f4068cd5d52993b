import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

/**
 * A line-oriented TCP test client: send command lines, await JSON objects.
 * Every received object is kept, so a test can wait for one that matches.
 */
export class TcpClient {
  readonly received: Record<string, unknown>[] = [];
  private buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.received.push(JSON.parse(line));
      }
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, host = '127.0.0.1'): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host, () => resolve(new TcpClient(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * The same client over TLS (through a TLS-terminating load balancer),
   * trusting only `ca`, optionally from a chosen loopback address (any of
   * 127.0.0.0/8 on Linux) so a test can tell clients apart behind it.
   */
  static openTls(target: { port: number; ca: string; from?: string }): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      // tls.connect hands socket options such as localAddress on to
      // net.connect; its types leave them out.
      const options = { host: '127.0.0.1', port: target.port, ca: target.ca, localAddress: target.from };
      const socket = connectTls(options, () => resolve(new TcpClient(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * A peer connection to a command-line client's listener (SPEC section 5):
   * TLS 1.3 with the certificate given, if any, and `servername` as the TLS
   * server name. The listener's certificate is not checked here: a test
   * checks it itself, as a requester would, through `socket`.
   */
  static openPeer(target: { host: string; port: number; key?: string; cert?: string; servername?: string }): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const socket = connectTls({ ...target, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, () => resolve(new TcpClient(socket)));
      socket.once('error', reject);
    });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  send(line: string): void {
    this.socket.write(line + '\n');
  }

  /** Waits for the first received object (from index `from` on) that matches. */
  async waitFor(match: (m: Record<string, unknown>) => boolean, timeoutMs = 10_000, from = 0): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(match);
      if (found) return found;
      if (this.closed) throw new Error(`connection closed; received ${JSON.stringify(this.received)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a command and waits for its reply (the next reply after what was received so far). */
  async command(line: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const from = this.received.length;
    this.send(line);
    return this.waitFor((m) => m.type === 'reply' || m.type === 'pong', timeoutMs, from);
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('connection stayed open');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
