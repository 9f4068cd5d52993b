import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openState } from '../../state/connect.js';
import type { RedisState } from '../../state/redis.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

/*
 * A wake-up subscription made while the subscriber connection is still being
 * set up (connected, its handshake replies not yet back) must hold. ioredis
 * writes SUBSCRIBE at once in that phase; a ready check (INFO) sent after it
 * then fails on a connection already in subscriber mode, the connection is
 * dropped and the subscription with it, although `watch` has resolved. On a
 * loaded machine that window is wide enough to hit; here a proxy holds the
 * server's replies for a moment so that it is hit every time.
 */

/** A TCP proxy to `port` that holds each connection's replies for `holdMs` and reports each connection's first request. */
interface SlowProxy {
  port: number;
  /** Resolves once `n` connections have sent their first bytes. */
  requested(n: number): Promise<void>;
  close(): Promise<void>;
}

function slowProxy(port: number, holdMs: number): Promise<SlowProxy> {
  const sockets: Socket[] = [];
  let requests = 0;
  const waiting: { n: number; resolve: () => void }[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    sockets.push(client, upstream);
    client.pipe(upstream);
    client.once('data', () => {
      requests++;
      for (const w of waiting.filter((w) => requests >= w.n)) w.resolve();
    });
    upstream.pause();
    setTimeout(() => upstream.pipe(client), holdMs);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        requested: (n) => (requests >= n ? Promise.resolve() : new Promise((r) => waiting.push({ n, resolve: r }))),
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

describe('wake-up subscriptions on a real redis-server', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a user watched while the subscriber connection is still being set up is woken', async () => {
    const proxy = await slowProxy(redis.port, 300);
    const opened: RedisState[] = [];
    try {
      const watcher = openState(`redis://127.0.0.1:${proxy.port}`).state;
      opened.push(watcher);
      const writer = openState(redis.url).state;
      opened.push(writer);
      const wakes: [string, number][] = [];
      watcher.onWake((user, event) => wakes.push([user, event.id]));
      expect(await writer.addUser('alice', 'h-alice')).toBe(true);
      // Both of the watcher's connections (commands, subscriber) have sent
      // their handshake and wait for its replies: watch now.
      await proxy.requested(2);
      await watcher.watch('alice');
      await writer.deliver('alice', { from: '', event: { kind: 'message', at: 1, json: '{"type":"message","text":"hi","at":1}' }, storable: true }, 100);
      await vi.waitFor(() => expect(wakes).toEqual([['alice', 1]]), { timeout: 10_000, interval: 20 });
    } finally {
      for (const s of opened) await s.close();
      await proxy.close();
    }
  });
});
