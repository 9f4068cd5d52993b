/**
 * A few process metrics in the Prometheus text format, for GET /metrics.
 * Counters and gauges only; each replica reports its own.
 */
class Counter {
  value = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: 'counter' | 'gauge',
  ) {}
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

export class Metrics {
  readonly commands = new Counter('im_commands_total', 'Command lines received', 'counter');
  readonly eventsDelivered = new Counter('im_events_delivered_total', 'Events written to clients', 'counter');
  readonly tcpConnections = new Counter('im_tcp_connections', 'Open TCP connections', 'gauge');
  readonly parkedPolls = new Counter('im_parked_polls', 'Long-polls waiting for events', 'gauge');
  readonly timeouts = new Counter('im_sessions_timed_out_total', 'Sessions this replica ended for inactivity', 'counter');

  render(): string {
    const all = [this.commands, this.eventsDelivered, this.tcpConnections, this.parkedPolls, this.timeouts];
    return all.map((m) => `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.kind}\n${m.name} ${m.value}\n`).join('');
  }
}
