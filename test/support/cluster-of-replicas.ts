import { makeCertificates, type TestCertificates } from './certificates.js';
import { startHaproxy, type RunningHaproxy } from './haproxy.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { startServer, type RunningServer } from './server.js';
import type { TlsTarget } from './tls-clients.js';

/**
 * The deployment of SPEC section 7 for a system test: a throwaway CA and
 * certificate, one real redis-server, three replicas on it (trusting the
 * balancer on 127.0.0.1 for PROXY v2 and X-Forwarded-For) and HAProxy from
 * deploy/haproxy.cfg terminating TLS in front of them. stop() stops every
 * process by its PID, each in its own try, so one failure leaves none running.
 */
export interface ClusterOfReplicas {
  certs: TestCertificates;
  redis: RedisServer;
  replicas: RunningServer[];
  lb: RunningHaproxy;
  /** The TLS TCP frontend, optionally from a chosen loopback address. */
  tcp(from?: string): TlsTarget;
  /** The HTTPS frontend. */
  web(from?: string): TlsTarget;
  /** A gauge each replica reports on its own metrics listener (never through the balancer), one number per replica. */
  gauge(name: string): Promise<number[]>;
  stop(): Promise<void>;
}

export async function startClusterOfReplicas(options: { positional?: string[]; args?: string[] } = {}): Promise<ClusterOfReplicas> {
  const stops: (() => Promise<unknown> | void)[] = [];
  const stop = async () => {
    let first: unknown;
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        first ??= err;
      }
    }
    stops.length = 0;
    if (first) throw first;
  };
  try {
    const certs = makeCertificates();
    stops.push(() => certs.remove());
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const started = await Promise.allSettled(
      [1, 2, 3].map(() =>
        startServer({
          positional: options.positional ?? ['60', '120'],
          args: ['--redis', redis.url, '--trust-proxy', '127.0.0.1/32', ...(options.args ?? [])],
        }),
      ),
    );
    const replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    stops.push(() => Promise.all(replicas.map((r) => r.stop())));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const lb = await startHaproxy({ replicas, certificate: certs.serverPem });
    stops.push(() => lb.stop());
    return {
      certs,
      redis,
      replicas,
      lb,
      tcp: (from) => ({ port: lb.tcpPort, ca: certs.ca, from }),
      web: (from) => ({ port: lb.httpPort, ca: certs.ca, from }),
      gauge: (name) =>
        Promise.all(
          replicas.map(async (replica) => {
            if (replica.process.exitCode !== null || replica.process.signalCode !== null) return 0;
            const text = await (await fetch(`${replica.metrics}/metrics`)).text();
            return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
          }),
        ),
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
