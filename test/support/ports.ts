import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
 * port by itself, and each is reserved for the process that got it: a file
 * named for the port, created exclusively, holds the owner's PID until that
 * process exits (a dead owner's reservation is taken over). Test processes
 * of one run, and of runs side by side, never get the same port; a test
 * that restarts its server on its port finds it still free.
 */

const FIRST = 20_000;
const reservations = join(tmpdir(), 'greatest-messaging-test-ports');
const mine: string[] = [];

/** The lowest port of the kernel's ephemeral range. */
function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && low > FIRST + 1000) return low;
  } catch {
    // not Linux: the IANA dynamic range starts at 49152
  }
  return 49152;
}

const size = ephemeralLow() - FIRST;
let next = Math.floor(Math.random() * size);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reserves `port` for this process; false when a live process holds it. */
function reserve(port: number): boolean {
  const file = join(reservations, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      mine.push(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(file, 'utf8'));
    } catch {
      // released meanwhile: try again
    }
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
    try {
      unlinkSync(file);
    } catch {
      // another process took it over first; the exclusive create decides
    }
  }
  return false;
}

process.once('exit', () => {
  for (const file of mine) {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
});

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
 * free now, and reserved for this process until it exits, so it stays the
 * test's own across restarts of its server.
 */
export async function freePort(): Promise<number> {
  mkdirSync(reservations, { recursive: true });
  for (let tries = 0; tries < size; tries++) {
    const port = FIRST + (next++ % size);
    if (reserve(port) && (await bindable(port))) return port;
  }
  throw new Error(`no free test port left in ${FIRST}-${FIRST + size - 1}`);
}
