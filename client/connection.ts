import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { readJsonLines } from './json-lines.js';
import type { PeerListener } from './peer.js';

/** A reply of SPEC section 4: one per command line, in command order. */
export interface Reply {
  type: 'reply';
  cmd: string;
  ok: boolean;
  error?: string;
  text: string;
  [field: string]: unknown;
}

/** An event of SPEC section 4; `id` is the cursor after it. */
export interface ServerEvent {
  type: string;
  id: string;
  text: string;
  [field: string]: unknown;
}

export interface LinkHandlers {
  /** A new event, each exactly once, in inbox order. */
  event(event: ServerEvent): void;
  /** The connection dropped; the link is reconnecting. */
  lost(): void;
  /** The session is attached again to a new connection. */
  resumed(reply: Reply): void;
  /**
   * The server refused to resume the session (it no longer has it). The link
   * is connected again with no session attached: a new login can go on it.
   */
  sessionLost(reply: Reply): void;
  /** The connection closed while no session was attached (before login): the link cannot go on. */
  closed(): void;
}

/**
 * What became of a command line: its reply was read; it was written but the
 * connection dropped before the reply (it may have been done); or it was
 * never written (the session ended while it waited).
 */
export type Outcome = 'answered' | 'lost' | 'unsent';

export interface LinkOptions {
  host: string;
  port: number;
  /**
   * Speak TLS (to a load balancer that terminates it). The server's
   * certificate is always verified: against `ca` alone when given (a private
   * CA), else against the system's CAs.
   */
  tls?: { ca?: string };
}

/** The server's TLS certificate failed verification; nothing was sent to it. */
export class CertificateRejected extends Error {}

/** The port answered in HTTP: it is the server's HTTP port, not its TCP one. */
export class HttpAnswered extends Error {}

/**
 * OpenSSL's certificate verification codes (and Node's name check): the
 * handshake reached a server whose certificate we do not trust, which no
 * retry will fix, unlike a refused or dropped connection.
 */
const certificateCodes = /CERT|SIGNATURE|INVALID_CA|PATH_LENGTH|INVALID_PURPOSE|HOSTNAME_MISMATCH/;

/** A command line sent to the server, waiting for its reply. */
interface Request {
  line: string;
  onReply: (reply: Reply) => void;
  /** Settles once `onReply` ran, or once the reply can no longer come. */
  settle: (outcome: Outcome) => void;
}

const maxLineBytes = 1024 * 1024;
const pingIntervalMs = 15_000;
/** Silence (not even a pong) for this long means the connection is dead. */
const silenceLimitMs = 3 * pingIntervalMs;
/** A connection (TLS handshake and the answer to the first ping included) not done by then is given up. */
const connectTimeoutMs = 10_000;
const backoffMs = [100, 250, 500, 1000, 2000, 3000, 5000];
/** Refusals of a resume that say nothing about the session: try again later. */
const transientErrors = new Set(['unavailable', 'rate_limited']);
/** How an HTTP server's answer starts (`HTTP/1.1 400 Bad Request` to our ping). */
const httpAnswer = 'HTTP/1.';

/**
 * The client's link to the server (SPEC sections 2 and 4): command lines
 * out, replies matched to their commands by order, events passed on once
 * each. After login it survives dropped connections: it reconnects with
 * backoff, resumes the session from the last event it passed on, advertises
 * the peer listener again, and only then sends the lines that waited.
 */
export class ServerLink {
  private socket: Socket | null = null;
  /** Written, waiting for their replies, oldest first. */
  private inflight: Request[] = [];
  /** Typed while disconnected: written once the session is resumed. */
  private outbox: Request[] = [];
  private token = '';
  /** The id of the last event passed on: the cursor to resume from (opaque, SPEC section 4). */
  private cursor = '';
  /** Ids of the events passed on lately: a replay never shows one twice. */
  private readonly recent = new RecentIds(1024);
  /** The peer listener advertised with `p2p`, again after every resume. */
  private listener: PeerListener | null = null;
  /** The server ended the session (logout, timeout): never reconnect. */
  private ended = false;
  private closedByUs = false;
  private reconnecting = false;
  private lastHeard = Date.now();
  private keepalive?: NodeJS.Timeout;

  constructor(
    private readonly options: LinkOptions,
    private readonly handlers: LinkHandlers,
  ) {}

  /** Opens the first connection. */
  async open(): Promise<void> {
    await this.connectSocket();
  }

  private get attached(): boolean {
    return this.token !== '';
  }

  /**
   * Sends one command line. `onReply` runs as soon as its reply is read, in
   * wire order with the events around it, so what is printed keeps the
   * server's order. Resolves with what became of the line.
   */
  send(line: string, onReply: (reply: Reply) => void = () => undefined): Promise<Outcome> {
    return new Promise((settle) => {
      const request = { line, onReply, settle };
      if (this.reconnecting) this.outbox.push(request);
      else this.write(request);
    });
  }

  /**
   * Logs in; on success the session becomes resumable from the reply's
   * cursor. `onReply` runs before the offline messages that follow the reply
   * are passed on, so the welcome is shown first.
   */
  async login(user: string, password: string, onReply: (reply: Reply) => void): Promise<Reply | null> {
    if (!this.socket) {
      try {
        await this.connectSocket();
      } catch {
        this.handlers.closed();
        return null;
      }
    }
    return new Promise((resolve) => {
      void this.send(`login ${user} ${password}`, (reply) => {
        if (reply.ok) this.attach(String(reply.token), String(reply.cursor));
        onReply(reply);
        resolve(reply);
      }).then((outcome) => {
        if (outcome !== 'answered') resolve(null);
      });
    });
  }

  /**
   * The address this end of the server connection has: the one peers can
   * most likely reach, where the peer listener binds.
   */
  get localAddress(): string {
    return (this.socket?.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  }

  /** Tells the server where the peer listener is and its certificate's fingerprint; repeated after every resume. */
  advertise(listener: PeerListener): Promise<Outcome> {
    this.listener = listener;
    return this.send(this.p2pLine(listener));
  }

  /** Closes the connection for good (after logout, or on exit). */
  close(): void {
    this.closedByUs = true;
    clearInterval(this.keepalive);
    this.socket?.destroy();
  }

  private attach(token: string, cursor: string): void {
    this.token = token;
    this.cursor = cursor;
    // A new session's ids may repeat an ended one's (a restarted embedded store counts from the start again).
    this.recent.clear();
    this.startKeepalive();
  }

  private p2pLine({ host, port, fingerprint }: PeerListener): string {
    return `p2p ${host} ${port} ${fingerprint}`;
  }

  private write(request: Request): void {
    if (!this.socket) {
      request.settle('unsent');
      return;
    }
    this.inflight.push(request);
    this.socket.write(request.line + '\n');
  }

  /**
   * Connects, then sends a ping and waits for its pong before the connection
   * counts as made: whatever listens on the port has to answer, so a wrong
   * port is named now, before the user types a username. An HTTP server
   * answers our ping with `HTTP/1.1 400 Bad Request`.
   */
  private connectSocket(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { host, port, tls } = this.options;
      const socket = tls
        ? connectTls({ host, port, ca: tls.ca, servername: isIP(host) ? undefined : host })
        : connect(port, host);
      let answered = false;
      let head = '';
      const fail = (err: Error & { code?: string }) => {
        if (answered) return;
        reject(tls && certificateCodes.test(err.code ?? '') ? new CertificateRejected(err.message) : err);
        socket.destroy();
      };
      socket.setNoDelay(true);
      socket.setTimeout(connectTimeoutMs, () => fail(new Error('timed out')));
      socket.on('error', fail);
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        // Looked at before the JSON framing, which would close on the first line that is not JSON.
        const sniff = (chunk: string | Buffer) => {
          head += chunk.toString();
          if (head.length < httpAnswer.length) return;
          socket.off('data', sniff);
          if (head.startsWith(httpAnswer)) fail(new HttpAnswered(head.split('\r\n')[0]));
        };
        socket.on('data', sniff);
        readJsonLines(socket, maxLineBytes, (object) => {
          if (!answered) {
            answered = true;
            socket.setTimeout(0);
            this.socket = socket;
            socket.once('close', () => this.onClose(socket));
            resolve();
          }
          this.receive(object);
        });
        socket.once('close', () =>
          fail(new Error(head === '' ? 'the connection was closed before the server answered' : 'it did not answer as a messaging server')),
        );
        socket.write('ping\n');
      });
    });
  }

  private receive(object: Record<string, unknown>): void {
    this.lastHeard = Date.now();
    if (object.type === 'pong') return;
    if (object.type === 'reply') {
      const request = this.inflight.shift();
      if (!request) return;
      request.onReply(object as Reply);
      request.settle('answered');
      return;
    }
    if (typeof object.id !== 'string' || typeof object.type !== 'string') return;
    const event = object as ServerEvent;
    if (event.type === 'session_end' && event.reason === 'shutdown') {
      // Not stored in the inbox (its id is the cursor we already have), and
      // the session outlives it: pass it on and reconnect when the server closes.
      this.handlers.event(event);
      return;
    }
    // A resume replays everything after the cursor we sent, so nothing should
    // come twice; cursors are opaque, so a repeat is recognised by its id.
    if (!this.recent.add(event.id)) return;
    this.cursor = event.id;
    if (event.type === 'session_end') this.ended = true;
    this.handlers.event(event);
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    const waiting = this.inflight.length > 0;
    for (const request of this.inflight.splice(0)) request.settle('lost');
    // A drop during a reconnection attempt is that loop's to retry.
    if (this.closedByUs || this.ended || this.reconnecting) return;
    if (!this.attached) {
      // Closed while the user is still typing a username or password (the
      // server's login deadline): the login connects again. Closed with a
      // command in flight: say so.
      if (waiting) this.handlers.closed();
      return;
    }
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    this.reconnecting = true;
    this.handlers.lost();
    for (let attempt = 0; !this.closedByUs; attempt++) {
      await sleep(jitter(backoffMs[Math.min(attempt, backoffMs.length - 1)]));
      if (this.closedByUs) return;
      try {
        await this.connectSocket();
      } catch {
        continue;
      }
      const resumed = await this.resume();
      if (resumed === 'dropped') continue;
      if (!resumed.ok && transientErrors.has(String(resumed.error))) {
        // The session may well be there: ask again on a fresh connection.
        this.socket?.destroy();
        continue;
      }
      this.reconnecting = false;
      if (!resumed.ok) {
        // The connection stays: it is a good one, only the session is gone.
        this.token = '';
        this.cursor = '';
        this.handlers.sessionLost(resumed);
        for (const request of this.outbox.splice(0)) request.settle('unsent');
        return;
      }
      for (const request of this.outbox.splice(0)) this.write(request);
      return;
    }
  }

  /** Resumes on the new connection: the resume's reply, or 'dropped'. */
  private async resume(): Promise<Reply | 'dropped'> {
    let result: Reply | 'dropped' = 'dropped';
    const resumed = new Promise<Outcome>((settle) =>
      this.write({
        line: `resume ${this.token} ${this.cursor}`,
        onReply: (reply) => {
          result = reply;
          if (reply.ok) this.handlers.resumed(reply);
        },
        settle,
      }),
    );
    const { listener } = this;
    const advertised = listener
      ? new Promise<Outcome>((settle) => this.write({ line: this.p2pLine(listener), onReply: () => undefined, settle }))
      : Promise.resolve('answered');
    // The p2p line is written right behind the resume: if the resume fails,
    // it fails too and changes nothing.
    await Promise.all([resumed, advertised]);
    return result;
  }

  /**
   * Pings keep a quiet connection from looking idle to middleboxes, and a
   * connection that stops answering them is dropped and resumed rather than
   * trusted forever. Pings are not activity: they never keep a session alive.
   */
  private startKeepalive(): void {
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => {
      if (!this.socket || this.reconnecting) return;
      if (Date.now() - this.lastHeard > silenceLimitMs) {
        this.socket.destroy();
        return;
      }
      this.socket.write('ping\n');
    }, pingIntervalMs);
    this.keepalive.unref();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Up to 20% more, so clients dropped together do not all come back at once. */
function jitter(ms: number): number {
  return Math.round(ms * (1 + Math.random() * 0.2));
}

/** The last `size` ids seen, to recognise a repeat without comparing cursors. */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly size: number) {}

  clear(): void {
    this.ids.clear();
  }

  /** Adds an id; false if it was seen already. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.size) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
}
