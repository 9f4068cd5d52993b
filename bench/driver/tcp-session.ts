import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** One reply or event as it came off the wire. */
export type WireObject = Record<string, unknown> & { type?: string };

interface Pending {
  resolve: (reply: WireObject) => void;
  sentAt: number;
}

/**
 * A client session over the public TCP protocol: command lines out, one
 * JSON object per line in. Replies come back in command order, so each one
 * settles the oldest pending command; everything else is an event.
 *
 * Presence lines are only counted, not parsed, unless `parseAll` is set:
 * logging in thousands of users sends millions of them, and parsing them
 * would make the driver, not the server, the thing measured.
 */
export class TcpSession {
  token = '';
  /** The last event id seen: the cursor to `resume` from. Opaque. */
  cursor = '';
  closed = false;
  closedByServer = false;
  presence = 0;
  events = 0;
  onEvent: (event: WireObject, at: number) => void = () => undefined;
  onClose: () => void = () => undefined;
  private buffer = '';
  private readonly pending: Pending[] = [];
  private closing = false;

  private constructor(
    readonly user: string,
    readonly socket: Socket,
    public parseAll: boolean,
  ) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('close', () => {
      this.closed = true;
      if (!this.closing) this.closedByServer = true;
      const now = performance.now();
      for (const p of this.pending.splice(0)) p.resolve({ type: 'reply', ok: false, error: 'connection_closed', text: 'connection closed', at: now });
      this.onClose();
    });
    socket.on('error', () => undefined);
  }

  static open(host: string, port: number, user: string, parseAll: boolean, timeoutMs: number): Promise<TcpSession> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`TCP connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new TcpSession(user, socket, parseAll));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Sends one command line; resolves with its reply (a synthetic `connection_closed` reply if the connection goes). */
  command(line: string): Promise<WireObject> {
    return new Promise((resolve) => {
      if (this.closed) {
        resolve({ type: 'reply', ok: false, error: 'connection_closed', text: 'connection closed' });
        return;
      }
      this.pending.push({ resolve, sentAt: performance.now() });
      this.socket.write(line + '\n');
    });
  }

  get inFlight(): number {
    return this.pending.length;
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let start = 0;
    let nl: number;
    const at = performance.now();
    while ((nl = this.buffer.indexOf('\n', start)) >= 0) {
      const line = this.buffer.slice(start, nl);
      start = nl + 1;
      if (line.length > 0) this.line(line, at);
    }
    this.buffer = start === 0 ? this.buffer : this.buffer.slice(start);
  }

  private line(line: string, at: number): void {
    if (!this.parseAll && line.startsWith('{"type":"presence"')) {
      this.presence++;
      this.events++;
      return;
    }
    let object: WireObject;
    try {
      object = JSON.parse(line) as WireObject;
    } catch {
      object = { type: 'unparsable', text: line };
    }
    if (object.type === 'reply') {
      const p = this.pending.shift();
      if (p) {
        object.at = at;
        object.latencyMs = at - p.sentAt;
        p.resolve(object);
      }
      return;
    }
    if (object.type === 'pong') return;
    this.events++;
    if (typeof object.id === 'string') this.cursor = object.id;
    if (object.type === 'presence') this.presence++;
    // The login and resume replies' cursor and token follow the reply on TCP (SPEC section 7).
    if (typeof object.token === 'string' && !this.token) this.token = object.token;
    this.onEvent(object, at);
  }
}
