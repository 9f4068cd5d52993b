import { expect, vi } from 'vitest';
import type { TcpClient } from './tcp-client.js';

/** A message body of 900 characters: a few thousand fill a socket's kernel buffers. */
export const floodBody = 'x'.repeat(900);

/** Sends `count` numbered messages (`<n> <body>`) from `from` to `to`, pipelined, and waits for every reply. */
export async function sendNumbered(from: TcpClient, to: string, first: number, count: number): Promise<void> {
  const replies = () => from.received.filter((m) => m.type === 'reply' && m.cmd === 'message');
  const before = replies().length;
  for (let k = 0; k < count; k++) from.send(`message ${to} ${first + k} ${floodBody}`);
  await vi.waitFor(() => expect(replies().length).toBe(before + count), { timeout: 30_000, interval: 20 });
  expect(replies().slice(before).every((r) => r.ok === true)).toBe(true);
}

/**
 * Sends numbered messages to a client that does not read until the kernel's
 * socket buffers (tens of MB on loopback) are full and the replica holds
 * output for it (`outputBytes` of its TCP stats); returns how many.
 */
export async function fillSocket(replica: { tcpStats(): { outputBytes: number } }, from: TcpClient, to: string): Promise<number> {
  let sent = 0;
  while (replica.tcpStats().outputBytes === 0) {
    if (sent >= 80_000) throw new Error('the socket never filled');
    await sendNumbered(from, to, sent, 1000);
    sent += 1000;
  }
  return sent;
}

/** The number a message of `sendNumbered` carries. */
export const numberOf = (m: Record<string, unknown>) => Number(String(m.body).split(' ')[0]);
