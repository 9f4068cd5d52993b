import { request } from 'node:https';
import { TcpClient } from './tcp-client.js';

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

/** A line client over TLS (SPEC section 4, TCP): the TCP test client on a TLS socket. */
export type TlsLineClient = TcpClient;
export const TlsLineClient = { open: (target: TlsTarget): Promise<TcpClient> => TcpClient.openTls(target) };

export interface HttpsAnswer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * One HTTPS request on a connection of its own; the body is JSON when it is
 * an object, the raw command line when it is a string.
 */
export function https(
  target: TlsTarget,
  method: 'GET' | 'POST',
  path: string,
  options: {
    body?: string | Record<string, unknown>;
    /** The body's content type (JSON for an object, text/plain for a string). */
    type?: string;
    token?: string;
    signal?: AbortSignal;
    /** The TLS server name to ask for (SNI) and check the certificate against. */
    servername?: string;
    /** Give up on a request that has not answered in this long. */
    timeoutMs?: number;
  } = {},
): Promise<HttpsAnswer> {
  const body = typeof options.body === 'object' ? JSON.stringify(options.body) : options.body;
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (body !== undefined) headers['content-type'] = options.type ?? (typeof options.body === 'object' ? 'application/json' : 'text/plain');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target.port,
        method,
        path,
        headers,
        ca: target.ca,
        localAddress: target.from,
        servername: options.servername,
        agent: false,
        signal: options.signal,
        timeout: options.timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers });
          } catch {
            reject(new Error(`HTTP ${res.statusCode} ${method} ${path}: not JSON: ${text.slice(0, 500)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    req.end(body);
  });
}
