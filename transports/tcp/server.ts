import { createServer, type Server } from 'node:net';
import type { Context } from '../../handlers/types.js';
import type { Live } from '../../delivery/live.js';
import type { TrustedProxies } from '../addresses.js';
import type { ConnectionLimits } from '../connection-limits.js';
import type { Metrics } from '../metrics.js';
import { Connection } from './connection.js';

export interface TcpOptions {
  ctx: Context;
  live: Live;
  proxies: TrustedProxies;
  metrics: Metrics;
  /** Bytes per second a connection may send (0 = no limit) and burst. */
  byteRate: number;
  byteBurst: number;
  /** Milliseconds a started line may stay unfinished before the connection is closed. */
  lineTimeoutMs: number;
  /** Milliseconds a connection may stay without a session (0 = no limit): idle sockets cannot pile up. */
  loginTimeoutMs: number;
  /** The replica's connection caps, shared with its HTTP listener. */
  limits: ConnectionLimits;
}

/** What the connections of one TCP server hold in memory right now. */
export interface TcpStats {
  connections: number;
  /** Bytes written and not yet taken by the kernel, over all connections. */
  outputBytes: number;
  /** Command lines received and not yet run, over all connections. */
  queuedLines: number;
  /** Connections whose socket is paused because their lines piled up. */
  paused: number;
}

/**
 * Each socket's own buffer, both ways: what the server holds for a client
 * that does not read is about this much, whatever the runtime's default
 * (16 KiB on Node 20, 64 KiB from Node 22 on).
 */
export const socketBufferBytes = 16 * 1024;

/** The TCP adapter (SPEC section 4): command lines in, JSON lines out; one Connection per socket. */
export function createTcpServer(options: TcpOptions): { server: Server; shutdown(): void; stats(): TcpStats } {
  const connections = new Set<Connection>();
  const server = createServer({ highWaterMark: socketBufferBytes }, (socket) => {
    const place = options.limits.admit(socket.remoteAddress ?? 'unknown');
    if ('refused' in place) {
      // SPEC section 6: a limit is named before the connection is closed.
      options.metrics.closes.inc({ reason: place.refused.reason });
      socket.on('error', () => socket.destroy());
      socket.end(JSON.stringify(place.refused.reply) + '\n');
      return;
    }
    const connection = new Connection(socket, options);
    connections.add(connection);
    options.metrics.tcpConnections.inc();
    socket.once('close', () => {
      connections.delete(connection);
      place.release();
      options.metrics.tcpConnections.dec();
      connection.gone();
    });
  });
  return {
    server,
    /** Tells every client the server is going away; their sessions stay resumable. */
    shutdown() {
      for (const connection of connections) connection.shutdown();
    },
    stats() {
      const stats = { connections: connections.size, outputBytes: 0, queuedLines: 0, paused: 0 };
      for (const connection of connections) {
        stats.outputBytes += connection.pendingOutput;
        stats.queuedLines += connection.queuedLines;
        if (connection.paused) stats.paused++;
      }
      return stats;
    },
  };
}
