import { connect, createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../../entries/args.js';
import { freePort } from '../support/ports.js';
import { parsePrometheus, sampleValue } from '../support/prometheus.js';
import { startTestReplica } from '../support/replica.js';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';

/*
 * GET /metrics (login failures, locks, sessions, the process) is for the
 * operator's scraper: on a listener of its own, loopback unless the operator
 * names another address, and not on the public HTTP port (issue 21).
 */

const notFound = { ok: false, error: 'not_found', text: 'Error. Unknown route' };
const servers: RunningServer[] = [];
const clients: TcpClient[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop()));
});

/** The status of GET /metrics on `host:port` over a new connection, or 'refused' when nothing listens there. */
async function answers(host: string, port: number): Promise<number | 'refused'> {
  const listening = await new Promise<boolean>((resolve, reject) => {
    const socket = connect(port, host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve(false) : reject(err)));
  });
  if (!listening) return 'refused';
  return (await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(10_000) })).status;
}

describe('the metrics flags', () => {
  it('default to port 9464 on loopback; 0 turns the listener off; a wrong value is a usage error', () => {
    expect(parseArgs([])).toMatchObject({ metricsPort: 9464, metricsHost: '127.0.0.1' });
    expect(parseArgs([], { IM_METRICS_PORT: '0', IM_METRICS_HOST: '10.0.0.11' })).toMatchObject({ metricsPort: 0, metricsHost: '10.0.0.11' });
    expect(parseArgs(['--metrics-port', '9100', '--metrics-host', '::1'], { IM_METRICS_PORT: '0' })).toMatchObject({ metricsPort: 9100, metricsHost: '::1' });
    for (const argv of [['--metrics-port', '70000'], ['--metrics-port', 'x'], ['--metrics-host='], ['--metrics-port']]) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(UsageError);
    }
  });
});

describe('GET /metrics on its own listener', () => {
  it('is not found on the public HTTP port, and served on the metrics port only', async () => {
    const t = await startTestReplica();
    try {
      const client = await TcpClient.open(t.replica.tcpPort);
      clients.push(client);
      expect(await client.command('login yoda wrong')).toMatchObject({ error: 'invalid_password' });

      for (const path of ['/metrics', '/metrics/', '/metrics?format=text']) {
        const res = await fetch(`${t.http.base}${path}`);
        expect(res.status, path).toBe(404);
        expect(await res.json(), path).toEqual(notFound);
      }

      expect(t.replica.metricsPort).not.toBe(t.replica.httpPort);
      const res = await fetch(`${t.http.metrics}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const samples = parsePrometheus(await res.text());
      expect(sampleValue(samples, 'im_login_failures_total', { reason: 'invalid_password' })).toBe(1);
      expect(sampleValue(samples, 'im_tcp_connections')).toBe(1);

      // The metrics listener serves nothing else: not the API, not the web client.
      for (const [method, path] of [['GET', '/'], ['GET', '/healthz'], ['POST', '/login'], ['POST', '/metrics'], ['GET', '/metricsx']]) {
        const other = await fetch(`${t.http.metrics}${path}`, { method });
        expect(other.status, `${method} ${path}`).toBe(404);
        expect(await other.json()).toEqual(notFound);
      }
    } finally {
      await t.replica.close();
    }
    // Closed with the replica.
    expect(await answers('127.0.0.1', t.replica.metricsPort)).toBe('refused');
  });

  it('is not started with port 0', async () => {
    const t = await startTestReplica({}, { metricsPort: 0 });
    try {
      expect(t.replica.metricsPort).toBe(0);
      expect((await fetch(`${t.http.base}/metrics`)).status).toBe(404);
    } finally {
      await t.replica.close();
    }
  });
});

describe('the server (entries/node.ts)', () => {
  it('binds the metrics listener to loopback by default, even when the public ports listen on every interface', async () => {
    const server = await startServer({ host: '0.0.0.0' });
    servers.push(server);
    // Any 127.x address but 127.0.0.1 reaches a listener on every interface,
    // and not one bound to 127.0.0.1 alone.
    const elsewhere = '127.0.0.2';
    expect((await fetch(`http://${elsewhere}:${server.httpPort}/healthz`)).status).toBe(200);
    expect(await answers(elsewhere, server.httpPort)).toBe(404);
    expect(await answers(elsewhere, server.metricsPort)).toBe('refused');
    expect(await answers('127.0.0.1', server.metricsPort)).toBe(200);
    expect(server.output()).toContain(`Metrics: GET http://127.0.0.1:${server.metricsPort}/metrics`);
  });

  it('binds the metrics listener to the address --metrics-host names', async () => {
    const server = await startServer({ args: ['--metrics-host', '127.0.0.2'] });
    servers.push(server);
    expect(await answers('127.0.0.2', server.metricsPort)).toBe(200);
    expect(await answers('127.0.0.1', server.metricsPort)).toBe('refused');
  });

  it('stops at start-up, naming the flag, when the metrics port is taken', async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    try {
      const started = startServer({ metricsPort: port });
      await expect(started).rejects.toThrow(`metrics listener on 127.0.0.1:${port}: listen EADDRINUSE`);
      await expect(started).rejects.toThrow('--metrics-port: each replica on a machine needs its own, or 0 for none');
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
