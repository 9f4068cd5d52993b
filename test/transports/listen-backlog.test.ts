import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestReplica } from '../support/replica.js';

/*
 * A burst of new connections (a replica's clients coming back after it
 * died, or any client opening them faster than a busy replica accepts)
 * waits in the kernel's accept queue. Node's default depth, 511, overflowed
 * in the bench and the kernel's SYN cookies then reset connections that
 * had sent their request. The kernel shows a listener's queue depth as the
 * Send-Q of `ss -l`.
 */
let t: Awaited<ReturnType<typeof startTestReplica>>;

beforeAll(async () => {
  t = await startTestReplica();
});

afterAll(async () => {
  await t.replica.close();
});

/** The accept queue's depth of the listener on a loopback port, as the kernel reports it. */
function acceptQueue(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const [, , sendQ] = line.split(/\s+/);
  return Number(sendQ);
}

describe('listen backlog', () => {
  it('both public listeners queue as many connections as the kernel allows (net.core.somaxconn), not 511', () => {
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    for (const port of [t.replica.tcpPort, t.replica.httpPort]) {
      expect(acceptQueue(port), `port ${port}`).toBe(somaxconn);
    }
  });
});
