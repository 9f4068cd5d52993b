import { request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';

/**
 * Clients for a TLS-terminating load balancer, each from a chosen loopback
 * address (any of 127.0.0.0/8 on Linux), so a test can tell client
 * addresses apart behind the balancer.
 */
export interface TlsTarget {
  port: number;
  /** The private CA's certificate (PEM). */
  ca: string;
  /** The client's own address, e.g. 127.0.0.2. */
  from?: string;
}

/** A line client over TLS: send command lines, await JSON objects (SPEC section 4, TCP). */
export class TlsLineClient {
  readonly received: Record<string, unknown>[] = [];
  private buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: TLSSocket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.received.push(JSON.parse(this.buffer.slice(0, nl)));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  static open(target: TlsTarget): Promise<TlsLineClient> {
    return new Promise((resolve, reject) => {
      // tls.connect hands socket options such as localAddress on to
      // net.connect; its types leave them out.
      const options = { host: '127.0.0.1', port: target.port, ca: target.ca, localAddress: target.from };
      const socket = connect(options, () => resolve(new TlsLineClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends a command and waits for its reply. */
  async command(line: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const from = this.received.length;
    this.socket.write(line + '\n');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.received.slice(from).find((m) => m.type === 'reply');
      if (reply) return reply;
      if (this.closed) throw new Error(`connection closed before the reply to "${line}"; received ${JSON.stringify(this.received)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply to "${line}"; received ${JSON.stringify(this.received)}`);
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

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export interface HttpsAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * One HTTPS request on a connection of its own; the body is JSON when it is
 * an object, the raw command line when it is a string.
 */
export function https(
  target: TlsTarget,
  method: 'GET' | 'POST',
  path: string,
  options: { body?: string | Record<string, unknown>; token?: string; signal?: AbortSignal } = {},
): Promise<HttpsAnswer> {
  const body = typeof options.body === 'object' ? JSON.stringify(options.body) : options.body;
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (body !== undefined) headers['content-type'] = typeof options.body === 'object' ? 'application/json' : 'text/plain';
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: target.port, method, path, headers, ca: target.ca, localAddress: target.from, agent: false, signal: options.signal },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            reject(new Error(`HTTP ${res.statusCode} ${method} ${path}: not JSON: ${text.slice(0, 500)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
