import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/*
 * Ports for the servers the tests start (the messaging server, redis-server,
 * HAProxy, wrangler).
 *
 * The kernel takes the local port of every outgoing connection, and of every
 * listen on port 0, from its ephemeral range (32768-60999 by default). A port
 * found free there, closed, and bound again a moment later (or after a
 * restart on the same port) can be taken in between by any connection of a
 * test file running in parallel: `EADDRINUSE` at random on a loaded machine.
 *
 * So test ports come from below the ephemeral range, where nothing picks a
 * port by itself: each vitest worker (VITEST_POOL_ID) has a slice of its own
 * and hands every port of it out at most once per process. A port is checked
 * free before it is handed out (a stopped server of an earlier file of the
 * same worker may still hold one for a moment); after that, only the test
 * that got it binds it, however often it restarts its server there.
 */

/** The lowest port of the kernel's ephemeral range. */
function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && low > 1024) return low;
  } catch {
    // not Linux: the IANA dynamic range starts at 49152
  }
  return 49152;
}

const FIRST = 20_000;
const SLICES = 4;
const top = Math.max(ephemeralLow(), FIRST + SLICES * 500);
const sliceSize = Math.floor((top - FIRST) / SLICES);
const pool = Math.max(1, Number(process.env.VITEST_POOL_ID ?? 1) || 1);
const sliceStart = FIRST + ((pool - 1) % SLICES) * sliceSize;
/** Where this process starts in its slice: anywhere, so two processes of one worker rarely meet. */
let next = Math.floor(Math.random() * sliceSize);
let handedOut = 0;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port for a test server: outside the kernel's ephemeral range,
 * free now, and never handed out again by this process, so it stays the
 * test's own across restarts of its server.
 */
export async function freePort(): Promise<number> {
  while (handedOut < sliceSize) {
    const port = sliceStart + (next % sliceSize);
    next++;
    handedOut++;
    if (await bindable(port)) return port;
  }
  throw new Error(`no free test port left in ${sliceStart}-${sliceStart + sliceSize - 1}`);
}
