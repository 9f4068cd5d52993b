import { serve } from '@hono/node-server';
import type { Server as NetServer } from 'node:net';
import type { Context } from '../handlers/types.js';
import { TrustedProxies } from '../transports/addresses.js';
import { createHttpApp } from '../transports/http.js';
import { Live } from '../delivery/live.js';
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
  metrics: Metrics;
  /** What the TCP connections hold in memory right now. */
  tcpStats(): TcpStats;
  /** Stop accepting, answer parked polls, send TCP clients session_end (shutdown). */
  drain(): void;
  /** Drain, then close the listeners. */
  close(): Promise<void>;
}

/** One replica: the TCP adapter and the HTTP app over one state store, plus its sweeper. */
export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const { ctx } = o;
  const metrics = new Metrics();
  ctx.state.onWake(() => metrics.wakeups.inc({ stream: 'inbox' }));
  ctx.state.onLobby(() => metrics.wakeups.inc({ stream: 'lobby' }));
  ctx.state.onResync(() => metrics.wakeups.inc({ stream: 'resync' }));
  ctx.state.onScript((script, seconds, ok) => metrics.scriptSeconds.observe({ script, outcome: ok ? 'ok' : 'error' }, seconds));
  // The lobby tail never holds more than the store keeps: a cursor behind
  // the store's cap is a gap whichever replica answers.
  const live = new Live(ctx.state, 30_000, Math.min(1024, ctx.config.lobbyBacklog));
  await live.start();
  const proxies = new TrustedProxies(o.trustProxy);
  const tcp = createTcpServer({
    ctx,
    live,
    proxies,
    metrics,
    byteRate: o.byteRate,
    byteBurst: o.byteBurst,
    lineTimeoutMs: o.lineTimeoutMs,
    loginTimeoutMs: o.loginTimeoutMs ?? 30_000,
    maxConnections: o.maxConnections ?? 16_000,
    maxConnectionsPerAddress: o.maxConnectionsPerAddress ?? 64,
  });
  await listen(tcp.server, o.port, o.host);
  const address = tcp.server.address();
  const tcpPort = typeof address === 'object' && address ? address.port : o.port;

  let http: ReturnType<typeof createHttpApp> | null = null;
  let httpServer: NetServer | null = null;
  if (o.httpPort > 0) {
    http = createHttpApp({
      ctx,
      live,
      metrics,
      clientAddress: (c) => proxies.httpClient(c.env.incoming.socket.remoteAddress ?? 'unknown', c.req.header('x-forwarded-for')),
    });
    const app = http.app;
    httpServer = await new Promise<NetServer>((resolve, reject) => {
      const server = serve({ fetch: app.fetch, port: o.httpPort, hostname: o.host }, () => resolve(server as NetServer));
      server.once('error', reject);
    });
  }
  const stopSweeper = startSweeper(ctx, metrics, o.sweepIntervalMs);

  let drained = false;
  const drain = () => {
    if (drained) return;
    drained = true;
    tcp.server.close();
    httpServer?.close();
    http?.shutdown();
    tcp.shutdown();
    stopSweeper();
  };
  return {
    tcpPort,
    httpPort: o.httpPort,
    metrics,
    tcpStats: () => tcp.stats(),
    drain,
    async close() {
      drain();
      (httpServer as { closeAllConnections?: () => void } | null)?.closeAllConnections?.();
      await Promise.all([
        new Promise<void>((resolve) => (tcp.server.listening ? tcp.server.close(() => resolve()) : resolve())),
      ]);
    },
  };
}

function listen(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}
