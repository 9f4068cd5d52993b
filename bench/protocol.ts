/**
 * What the runner and its driver processes say to each other over the
 * child-process IPC channel. Both sides are bench code; neither imports the
 * server's code: the driver reaches the server only through its public TCP
 * and HTTP protocols.
 */

export interface Target {
  host: string;
  tcpPort: number;
  httpPort: number;
  /** A real XMPP server (ejabberd, Prosody) compared with ours: where it listens and its users' domain. */
  xmpp?: { host: string; port: number; domain: string };
}

/** How a driver's sessions reach the server: ours over TCP or HTTP, a peer over XMPP. */
export type Transport = 'tcp' | 'http' | 'xmpp';

/** The first request every driver gets. */
export interface InitArgs {
  target: Target;
  /** Random per run: every message the driver sends carries it, so a message from anywhere else is recognised as foreign. */
  runId: string;
  driverIndex: number;
}

export interface LoginArgs {
  transport: Transport;
  users: string[];
  password: string;
  /** Logins in flight at once (1 = one after another). */
  concurrency: number;
  deadlineMs: number;
  /** HTTP only: park a long-poll for each session once logged in. */
  poll?: boolean;
  /** Seconds each parked long-poll waits (at most 60). */
  pollWait?: number;
  /** TCP only: parse every event line (needed to keep a cursor for `resume`). */
  parseAll?: boolean;
}

export interface LoginResult {
  ok: number;
  /** Refused logins by error code. */
  refused: Record<string, number>;
  /** Time from sending the login to its reply, per successful login, in microseconds, in order. */
  latenciesUs: number[];
  wallMs: number;
  deadlineHit: boolean;
  /** The first refusal's message, when it says more than its code (an XMPP handshake's). */
  firstError?: string;
}

export interface LogoutArgs {
  /** Log out the last `count` TCP sessions, one after another. */
  count: number;
  deadlineMs: number;
}

export interface LogoutResult {
  users: string[];
  latenciesUs: number[];
  wallMs: number;
  deadlineHit: boolean;
}

/** Sessions [from, to) of one transport in this driver. */
export interface SessionRange {
  transport: Transport;
  from?: number;
  to?: number;
}

export interface ClosedLoopArgs extends SessionRange {
  /** Messages each user keeps in flight. */
  window: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  bodyBytes: number;
}

export interface OpenLoopArgs extends SessionRange {
  /** Offered messages per second, over all senders of this driver. */
  rate: number;
  durationMs: number;
  drainMs: number;
  bodyBytes: number;
  /** Sends allowed in flight at once before the driver itself holds back (counted as driver lag). */
  maxInFlight: number;
}

/** What the driver checked about the messages it counted. */
export interface Verification {
  sent: number;
  delivered: number;
  /** Sent, accepted, never received before the drain deadline. */
  lost: number;
  /** Refused by the server (reply ok:false, or over XMPP an error bounce), by error code. */
  refused: Record<string, number>;
  /** Received a second time (not counted again). */
  duplicates: number;
  /** Received by someone other than the addressee, or from someone other than the sender (not counted). */
  misrouted: number;
  /** Messages not sent by this driver in this run (not counted). */
  foreign: number;
  /** Gaps reported by the server (`gap: true`). */
  gaps: number;
}

export interface LoadResult {
  verification: Verification;
  /** Deliveries inside the measuring window. */
  measuredDeliveries: number;
  measuredMs: number;
  /** Send-to-receive latency in microseconds, HDR histogram, compressed base64 (hdr-histogram-js). */
  latency: string;
  /** Time from sending a command to its reply, microseconds, HDR histogram (empty over XMPP: a message has no reply). */
  replyLatency: string;
  /** Open loop: sends that left later than scheduled because the driver held back. */
  driverLagged?: number;
  cpu: CpuShare;
  deadlineHit: boolean;
}

export interface CpuShare {
  /** Driver CPU time (user + system) over wall time, 1.0 = one full core. */
  share: number;
  cpuMs: number;
  wallMs: number;
}

export interface BroadcastArgs {
  /** Index of the sending TCP session in this driver, or -1 when another driver sends. */
  sender: number;
  tag: string;
  deadlineMs: number;
  /** Recipients this driver must see it on (its TCP sessions other than the sender). */
  expected: number;
}

export interface BroadcastResult {
  /** When this driver's sender got the reply (µs after it sent), -1 if not the sender. */
  replyUs: number;
  replyOk: boolean;
  replyText: string;
  /** Arrival times in epoch microseconds, one per recipient that got it. */
  arrivalsEpochUs: number[];
  /** Epoch µs when the broadcast was sent (sender only). */
  sentEpochUs: number;
  missing: number;
  duplicates: number;
}

export interface ProbeArgs {
  count: number;
  deadlineMs: number;
}

export interface ProbeResult {
  replyLatency: string;
  deliveryLatency: string;
  completed: number;
  deadlineHit: boolean;
}

export interface SlowReaderArgs {
  /** Index of the TCP session that stops reading. */
  reader: number;
  /** TCP sessions [floodFrom, floodTo) send to the reader. */
  floodFrom: number;
  floodTo: number;
  floodRate: number;
  floodBodyBytes: number;
  durationMs: number;
  /** Others: open loop among TCP sessions [othersFrom, othersTo). */
  othersFrom: number;
  othersTo: number;
  othersRate: number;
  othersBodyBytes: number;
  /** After the stall, how long the reader may take to catch up. */
  catchUpMs: number;
}

export interface SlowReaderResult {
  flood: Verification;
  others: LoadResult;
  /** The server closed the reader's connection during the stall. */
  readerCutOff: boolean;
  /** ms after the stall began that the driver saw the cut-off (-1 if not). */
  cutOffAfterMs: number;
  /**
   * The close was only seen once the reader read again: a socket nobody
   * reads does not see the server's close, so it happened some time during
   * the stall.
   */
  cutOffSeenOnResume: boolean;
  /** After resuming reading (and `resume` on a new connection if cut off): ms until every accepted flood message arrived, -1 if some never did. */
  catchUpMs: number;
  resumed: boolean;
}

export interface DriverStats {
  cpu: { userMs: number; systemMs: number };
  rssBytes: number;
  tcpSessions: number;
  httpSessions: number;
  xmppSessions: number;
  /** Presence events received, all sessions. */
  presence: number;
  /** Every event received, all sessions. */
  events: number;
  /** Connections the server closed. */
  closedByServer: number;
}

export interface Requests {
  init: [InitArgs, { pid: number }];
  login: [LoginArgs, LoginResult];
  logout: [LogoutArgs, LogoutResult];
  closedLoop: [ClosedLoopArgs, LoadResult];
  openLoop: [OpenLoopArgs, LoadResult];
  broadcast: [BroadcastArgs, BroadcastResult];
  probe: [ProbeArgs, ProbeResult];
  slowReader: [SlowReaderArgs, SlowReaderResult];
  stats: [Record<string, never>, DriverStats];
}

export type Op = keyof Requests;

export interface Request<K extends Op = Op> {
  id: number;
  op: K;
  args: Requests[K][0];
}

export type Response =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string };
