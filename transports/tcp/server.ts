import { createServer, type Server } from 'node:net';
import { fail, texts } from '../../handlers/replies.js';
import type { Context, Reply } from '../../handlers/types.js';
import type { Live } from '../../delivery/live.js';
import type { TrustedProxies } from '../addresses.js';
import { addressGroup } from '../../handlers/address-group.js';
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
  /** Connections this server holds, and from one client address; 0 = no limit. */
  maxConnections: number;
  maxConnectionsPerAddress: number;
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
  const perAddress = new Map<string, number>();
  const server = createServer({ highWaterMark: socketBufferBytes }, (socket) => {
    const peer = socket.remoteAddress ?? 'unknown';
    // Counted per host as the login guards count it: an IPv6 peer by its /64.
    const address = addressGroup(peer);
    // A trusted proxy carries many clients: it is not counted as one.
    const counted = !options.proxies.trusts(peer);
    const refusal = refuse(options, connections.size, counted ? (perAddress.get(address) ?? 0) : 0);
    if (refusal) {
      // SPEC section 6: a limit is named before the connection is closed.
      options.metrics.closes.inc({ reason: refusal.reason });
      socket.on('error', () => socket.destroy());
      socket.end(JSON.stringify(refusal.reply) + '\n');
      return;
    }
    const connection = new Connection(socket, options);
    connections.add(connection);
    if (counted) perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    options.metrics.tcpConnections.inc();
    socket.once('close', () => {
      connections.delete(connection);
      if (counted) {
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left > 0) perAddress.set(address, left);
        else perAddress.delete(address);
      }
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

/** Why a new connection is refused, if it is: this replica is full, or its address holds its share. */
function refuse(o: TcpOptions, held: number, fromAddress: number): { reason: string; reply: Reply } | null {
  if (o.maxConnections > 0 && held >= o.maxConnections) {
    return { reason: 'max_connections', reply: fail('', 'too_many_connections', texts.serverFull) };
  }
  if (o.maxConnectionsPerAddress > 0 && fromAddress >= o.maxConnectionsPerAddress) {
    return { reason: 'address_connections', reply: fail('', 'too_many_connections', texts.addressFull(o.maxConnectionsPerAddress)) };
  }
  return null;
}

