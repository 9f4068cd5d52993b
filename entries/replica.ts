import { createAdaptorServer } from '@hono/node-server';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { httpStatus } from '../handlers/replies.js';
import { ConnectionLimits } from '../transports/connection-limits.js';
import type { Context } from '../handlers/types.js';
import { TrustedProxies } from '../transports/addresses.js';
import { createHttpApp, joinChunks, type RequestHost } from '../transports/http.js';
import { Live } from '../delivery/live.js';
import type { ClientGone } from '../delivery/long-poll.js';
import { Metrics } from '../transports/metrics.js';
import { startSweeper } from './sweeper.js';
import { createTcpServer, type TcpStats } from '../transports/tcp/server.js';

export interface ReplicaOptions {
  ctx: Context;
  host: string;
  /** TCP port (0 = any free one). */
  port: number;
  /** HTTP port (0 = no HTTP). */
  httpPort: number;
  /** Port of the metrics listener (0 or absent = none), and its address (loopback unless given). */
  metricsPort?: number;
  metricsHost?: string;
  trustProxy: string[];
  byteRate: number;
  byteBurst: number;
  lineTimeoutMs: number;
  /** Milliseconds a TCP connection may stay without a session (0 = no limit). */
  loginTimeoutMs?: number;
  /** TCP connections this replica holds, and from one address (0 = no limit). */
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  sweepIntervalMs: number;
}

export interface Replica {
  tcpPort: number;
  httpPort: number;
  /** The metrics listener's port (0 = none): GET /metrics there, never on the public ports. */
  metricsPort: number;
  metrics: Metrics;
  /** What the TCP connections hold in memory right now. */
  tcpStats(): TcpStats;
  /** Stop accepting, answer parked polls, send TCP clients session_end (shutdown). */
  drain(): void;
  /** Drain, then close the listeners. */
  close(): Promise<void>;
}

/** One replica: the TCP adapter and the HTTP app over one state store, plus its sweeper and its metrics listener. */
export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const { ctx } = o;
  const metrics = new Metrics();
  // First, so a port taken by another replica stops the start before anything else listens.
  const metricsServer = o.metricsPort ? await serveMetrics(metrics, o.metricsPort, o.metricsHost ?? '127.0.0.1') : null;
  ctx.state.onWake(() => metrics.wakeups.inc({ stream: 'inbox' }));
  ctx.state.onLobby(() => metrics.wakeups.inc({ stream: 'lobby' }));
  ctx.state.onResync(() => metrics.wakeups.inc({ stream: 'resync' }));
  ctx.state.onScript((script, seconds, ok) => metrics.scriptSeconds.observe({ script, outcome: ok ? 'ok' : 'error' }, seconds));
  // The lobby tail never holds more than the store keeps: a cursor behind
  // the store's cap is a gap whichever replica answers.
  const live = new Live(ctx.state, 30_000, Math.min(1024, ctx.config.lobbyBacklog));
  await live.start();
  const proxies = new TrustedProxies(o.trustProxy);
  // One set of caps over both listeners: they share the process's open files.
  const limits = new ConnectionLimits(o.maxConnections ?? 16_000, o.maxConnectionsPerAddress ?? 64, proxies);
  const tcp = createTcpServer({
    ctx,
    live,
    proxies,
    metrics,
    byteRate: o.byteRate,
    byteBurst: o.byteBurst,
    lineTimeoutMs: o.lineTimeoutMs,
    loginTimeoutMs: o.loginTimeoutMs ?? 30_000,
    limits,
  });
  await listen(tcp.server, o.port, o.host);
  const address = tcp.server.address();
  const tcpPort = typeof address === 'object' && address ? address.port : o.port;

  let http: ReturnType<typeof createHttpApp> | null = null;
  let httpServer: NetServer | null = null;
  let httpApi: HttpServer | null = null;
  if (o.httpPort > 0) {
    http = createHttpApp({
      ctx,
      live,
      metrics,
      clientAddress: (c) => proxies.httpClient(c.env.incoming.socket.remoteAddress ?? 'unknown', nodeRequests.header(c, 'x-forwarded-for')),
      requests: nodeRequests,
    });
    httpApi = createAdaptorServer({ fetch: http.app.fetch }) as HttpServer;
    httpServer = cappedListener(httpApi, limits, metrics);
    await listen(httpServer, o.httpPort, o.host);
  }
  const stopSweeper = startSweeper(ctx, metrics, o.sweepIntervalMs);

  let drained = false;
  const drain = () => {
    if (drained) return;
    drained = true;
    tcp.server.close();
    httpServer?.close();
    httpApi?.closeIdleConnections();
    http?.shutdown();
    tcp.shutdown();
    stopSweeper();
  };
  return {
    tcpPort,
    httpPort: o.httpPort,
    metricsPort: o.metricsPort ?? 0,
    metrics,
    tcpStats: () => tcp.stats(),
    drain,
    async close() {
      drain();
      httpApi?.closeAllConnections();
      // The metrics listener outlives a drain (a scrape still sees the replica
      // wind down) and closes with the replica.
      metricsServer?.closeAllConnections();
      await Promise.all([
        new Promise<void>((resolve) => (tcp.server.listening ? tcp.server.close(() => resolve()) : resolve())),
        new Promise<void>((resolve) => (metricsServer?.listening ? metricsServer.close(() => resolve()) : resolve())),
      ]);
    },
  };
}

const notFound = JSON.stringify({ ok: false, error: 'not_found', text: 'Error. Unknown route' });

/**
 * GET /metrics on a listener of its own: what a replica counts (login
 * failures, locks, sessions, the process) is for the operator's scraper, so
 * it is on loopback unless the operator names another address, and never on
 * the public ports or behind the load balancer. Anything else is not found.
 */
async function serveMetrics(metrics: Metrics, port: number, host: string): Promise<HttpServer> {
  const server = createHttpServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(notFound);
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  try {
    await listen(server, port, host);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`metrics listener on ${host}:${port}: ${reason} (--metrics-port: each replica on a machine needs its own, or 0 for none)`);
  }
  return server;
}

/**
 * The HTTP port: a plain listener that takes each connection under the
 * replica's caps and hands it to the HTTP server, or refuses it with a 503
 * that names the limit (as the TCP port replies before it closes).
 */
function cappedListener(api: HttpServer, limits: ConnectionLimits, metrics: Metrics): NetServer {
  return createNetServer((socket) => {
    const place = limits.admit(socket.remoteAddress ?? 'unknown');
    if ('refused' in place) {
      metrics.closes.inc({ reason: place.refused.reason });
      const body = JSON.stringify(place.refused.reply);
      socket.on('error', () => socket.destroy());
      socket.end(
        `HTTP/1.1 ${httpStatus(place.refused.reply)} Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    socket.once('close', place.release);
    api.emit('connection', socket);
  });
}

/**
 * Requests read off Node's IncomingMessage and ServerResponse (which
 * @hono/node-server hands over as `c.env`), so that no web Request is built.
 */
const nodeRequests: RequestHost = {
  header(c, name) {
    const value = (c.env.incoming as IncomingMessage).headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  },
  body: (c, max) => readIncoming(c.env.incoming, max),
  gone: (c) => responseClosed(c.env.outgoing),
};

/**
 * A request body, up to `max` bytes. Past it, what is left is read and
 * dropped, so the connection stays usable for the 413. A client that leaves
 * mid-body rejects it, as a web Request's body would.
 */
function readIncoming(incoming: IncomingMessage, max: number): Promise<Uint8Array | 'too_long'> {
  if (Number(incoming.headers['content-length'] ?? 0) > max) return Promise.resolve('too_long');
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const stop = () => {
      incoming.off('data', data);
      incoming.off('end', end);
      incoming.off('close', closed);
    };
    const data = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= max) return void chunks.push(chunk);
      stop();
      incoming.resume();
      resolve('too_long');
    };
    const end = () => {
      stop();
      resolve(joinChunks(chunks, size));
    };
    const closed = () => {
      stop();
      reject(new Error('the client closed the connection before the end of its request body'));
    };
    incoming.on('data', data);
    incoming.once('end', end);
    incoming.once('close', closed);
  });
}

/**
 * A parked poll's client left: its response closed before it was sent. Read
 * off Node's response, so that no web Request is built for its AbortSignal.
 */
function responseClosed(res: ServerResponse): ClientGone {
  return {
    gone: () => res.destroyed,
    onGone(fn) {
      res.once('close', fn);
      return () => res.off('close', fn);
    },
  };
}

/**
 * Connections the kernel holds for a listener until the replica accepts
 * them; Linux caps it at `net.core.somaxconn` (4096 since Linux 5.4).
 * Node's default, 511, overflowed whenever clients opened connections faster
 * than a busy replica took them (the bench's HTTP open loop past saturation:
 * 25,000 overflows a run); the kernel then answers with SYN cookies, and a
 * client whose cookie fails gets its connection reset after it sent its
 * request (`ECONNRESET`, 50-230 requests a run). A replica that dies sends
 * all its clients to the others at once, so this is their burst too.
 */
const listenBacklog = 65_535;

function listen(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: listenBacklog }, () => resolve());
  });
}
