import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { makePeerIdentity, type PeerIdentity } from '../../client/certificate.js';

/*
 * What a network between two command-line clients can do to their private
 * chat (SPEC section 5, point 5), on loopback: send the requester elsewhere,
 * carry the bytes, or answer in the listener's place. Each piece listens on
 * a free loopback port of its own and is closed by the test.
 */

/** A private_accept as the requester's server connection carried it. */
export interface Accept {
  peer: string;
  host: string;
  port: number;
  token: string;
  fingerprint: string;
}

/** The TLS server name a requester sends for `token` (docs/CLI.md, the peer protocol): the first 128 bits of its SHA-256, in hex. */
export function peerLabel(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 32);
}

/** Listens on a free loopback port; resolves with the port. */
function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes a listener and every connection it made or took. */
function closeAll(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Ends either socket when the other ends. */
function tie(a: Socket, b: Socket): void {
  for (const [x, y] of [[a, b], [b, a]]) {
    x.on('error', () => x.destroy());
    x.on('close', () => y.destroy());
  }
}

/**
 * A hop on one client's way to the server that sends the client's
 * private_accept events to another port on loopback (`redirect` picks it):
 * what someone who can change the server's answers on an unprotected server
 * connection, or a stale address, does. The fingerprint is left as the
 * server sent it.
 */
export class ServerPath {
  /** The private_accept events as the server sent them. */
  readonly accepts: Accept[] = [];
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  port = 0;

  private constructor(private readonly redirect: (accept: Accept) => number) {}

  static async start(serverPort: number, redirect: (accept: Accept) => number): Promise<ServerPath> {
    const path = new ServerPath(redirect);
    path.server = createServer((client) => path.carry(client, connect(serverPort, '127.0.0.1')));
    path.port = await listen(path.server);
    return path;
  }

  close(): Promise<void> {
    return closeAll(this.server, this.sockets);
  }

  private carry(client: Socket, upstream: Socket): void {
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    }
    tie(client, upstream);
    client.pipe(upstream);
    let buffer = '';
    upstream.setEncoding('utf8');
    upstream.on('data', (chunk: string) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const object = JSON.parse(line) as Record<string, unknown>;
        if (object.type === 'private_accept') {
          const accept = object as unknown as Accept;
          this.accepts.push({ ...accept });
          client.write(JSON.stringify({ ...object, host: '127.0.0.1', port: this.redirect(accept) }) + '\n');
        } else {
          client.write(line + '\n');
        }
      }
    });
  }
}

/**
 * A relay that only forwards: every byte from the requester to the
 * listener's real address and back, each direction kept for the test to read.
 */
export class ForwardingRelay {
  /** Where to forward to; set by the time the requester connects. */
  target: { host: string; port: number } | null = null;
  private readonly chunks: Buffer[] = [];
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  port = 0;

  static async start(): Promise<ForwardingRelay> {
    const relay = new ForwardingRelay();
    relay.server = createServer((requester) => {
      const { host, port } = relay.target!;
      const listener = connect(port, host);
      for (const socket of [requester, listener]) {
        relay.sockets.add(socket);
        socket.on('close', () => relay.sockets.delete(socket));
        socket.on('data', (chunk: Buffer) => relay.chunks.push(chunk));
      }
      tie(requester, listener);
      requester.pipe(listener);
      listener.pipe(requester);
    });
    relay.port = await listen(relay.server);
    return relay;
  }

  /** Every byte forwarded so far, both ways. */
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  close(): Promise<void> {
    return closeAll(this.server, this.sockets);
  }
}

/**
 * A relay that answers the requester with a certificate of its own and
 * connects on to the listener with it, claiming to be the requester (it
 * passes the requester's TLS server name on, the one thing it can), then
 * passes on whatever either side says: a third party on the path.
 */
export class ImpostorRelay {
  target: { host: string; port: number } | null = null;
  /** What the requester sent it inside TLS. */
  fromRequester = '';
  private readonly sockets = new Set<Socket>();
  private readonly waiting: TLSSocket[] = [];
  private server!: Server;
  port = 0;

  private constructor(readonly identity: PeerIdentity) {}

  static async start(): Promise<ImpostorRelay> {
    const relay = new ImpostorRelay(await makePeerIdentity());
    const { key, cert } = relay.identity;
    const context = createSecureContext({ key, cert, minVersion: 'TLSv1.3' });
    relay.server = createTlsServer({
      key,
      cert,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      // Connects on as soon as the requester's hello names whom it wants,
      // whether or not the requester goes on with the handshake.
      SNICallback: (servername, done) => {
        const { host, port } = relay.target!;
        const upstream = connectTls({ host, port, key, cert, servername, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
        relay.sockets.add(upstream);
        upstream.on('error', () => upstream.destroy());
        relay.waiting.push(upstream);
        done(null, context);
      },
    });
    relay.server.on('secureConnection', (requester: TLSSocket) => {
      relay.sockets.add(requester);
      const upstream = relay.waiting.shift();
      if (!upstream) return void requester.destroy();
      requester.on('data', (chunk: Buffer) => (relay.fromRequester += chunk.toString()));
      tie(requester, upstream);
      requester.pipe(upstream);
      upstream.pipe(requester);
    });
    relay.port = await listen(relay.server);
    return relay;
  }

  close(): Promise<void> {
    return closeAll(this.server, this.sockets);
  }
}

/**
 * Answers in the listener's place with a certificate of its own, and
 * presents the right token (the test hands it over) in a welcome.
 */
export class FakeListener {
  token = '';
  /** What the requester sent it inside TLS. */
  fromRequester = '';
  /** How many requesters connected to it. */
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  port = 0;

  static async start(peerName: string): Promise<FakeListener> {
    const fake = new FakeListener();
    const { key, cert } = await makePeerIdentity();
    fake.server = createTlsServer({ key, cert, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (requester) => {
      fake.sockets.add(requester);
      requester.on('error', () => requester.destroy());
      requester.on('data', (chunk: Buffer) => (fake.fromRequester += chunk.toString()));
      requester.write(JSON.stringify({ type: 'welcome', from: peerName, token: fake.token }) + '\n');
    });
    fake.server.on('connection', () => fake.connections++);
    fake.port = await listen(fake.server);
    return fake;
  }

  close(): Promise<void> {
    return closeAll(this.server, this.sockets);
  }
}
