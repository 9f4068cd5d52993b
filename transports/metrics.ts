import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Transport = 'tcp' | 'http';

/**
 * A replica's metrics in the Prometheus text format, for GET /metrics on the
 * replica's metrics listener (entries/replica.ts), never the public port
 * (docs/OPERATIONS.md says what each means). Each replica has its own
 * registry, so several replicas in one process (the tests) do not mix.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly commands = new Counter({
    name: 'im_commands_total',
    help: 'Commands run, by verb, outcome (ok or the error code) and transport',
    labelNames: ['verb', 'outcome', 'transport'] as const,
    registers: [this.registry],
  });
  readonly commandSeconds = new Histogram({
    name: 'im_command_duration_seconds',
    help: 'Time from a command line to its reply',
    labelNames: ['transport'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly scriptSeconds = new Histogram({
    name: 'im_redis_script_duration_seconds',
    help: 'Time of one state-store script or command, by name and outcome',
    labelNames: ['script', 'outcome'] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
    registers: [this.registry],
  });
  readonly eventsDelivered = new Counter({
    name: 'im_events_delivered_total',
    help: 'Events written to clients, by transport',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly tcpConnections = new Gauge({ name: 'im_tcp_connections', help: 'Open TCP connections', registers: [this.registry] });
  readonly tcpSessions = new Gauge({
    name: 'im_tcp_sessions',
    help: 'TCP connections bound to a session (after login or resume)',
    registers: [this.registry],
  });
  readonly parkedPolls = new Gauge({ name: 'im_parked_polls', help: 'Long-polls waiting for events', registers: [this.registry] });
  readonly wakeups = new Counter({
    name: 'im_wakeups_total',
    help: 'Wake-ups received from the state store, by stream (inbox or lobby) or resync',
    labelNames: ['stream'] as const,
    registers: [this.registry],
  });
  readonly timeouts = new Counter({
    name: 'im_sessions_timed_out_total',
    help: 'Sessions this replica ended for inactivity (its sweeper claimed them)',
    registers: [this.registry],
  });
  readonly expirations = new Counter({
    name: 'im_sessions_expired_total',
    help: 'Sessions this replica ended at their absolute lifetime (--session-lifetime; its sweeper claimed them)',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'im_rate_limited_total',
    help: 'Refusals for going over a rate limit, by limit (command, login, bytes)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly loginFailures = new Counter({
    name: 'im_login_failures_total',
    help: 'Failed logins, by reason (the error code)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly locks = new Counter({
    name: 'im_login_locks_total',
    help: 'Accounts or addresses locked after repeated login failures',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly closes = new Counter({
    name: 'im_connections_closed_total',
    help: 'Connections the server closed (or refused: TCP and HTTP) for a limit or a failure, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** `process: false` where there is no process to describe (a Worker's isolate). */
  constructor(options: { process?: boolean } = {}) {
    if (options.process !== false) collectDefaultMetrics({ register: this.registry, prefix: 'im_' });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
