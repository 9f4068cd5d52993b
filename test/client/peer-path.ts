import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { makePeerIdentity } from '../../client/certificate.js';

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

/** Something on loopback that the requester is sent to instead of the listener it was told of. */
export interface StandIn {
  port: number;
  /** Learns what the server said: where the real listener is, and the token. */
  take(accept: Accept): void;
  close(): Promise<void>;
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

/** Carries bytes both ways between two sockets, and ends both together. */
function join(a: Socket, b: Socket): void {
  tie(a, b);
  a.pipe(b);
  b.pipe(a);
}

/** A listener on loopback and the connections it holds, closed together. */
abstract class LoopbackPiece {
  port = 0;
  protected server!: Server;
  protected readonly sockets = new Set<Socket>();

  protected async listenWith(server: Server): Promise<void> {
    this.server = server;
    this.port = await listen(server);
  }

  /** Keeps `socket` until it closes, to close it with the stand-in. */
  protected hold(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  close(): Promise<void> {
    return closeAll(this.server, this.sockets);
  }
}

/**
 * A hop on one client's way to the server that sends the client's
 * private_accept events to a stand-in on loopback instead:
 * what someone who can change the server's answers on an unprotected server
 * connection, or a stale address, does. The fingerprint is left as the
 * server sent it.
 */
export class ServerPath extends LoopbackPiece {
  /** The private_accept events as the server sent them. */
  readonly accepts: Accept[] = [];

  private constructor(private readonly standIn: StandIn) {
    super();
  }

  static async start(serverPort: number, standIn: StandIn): Promise<ServerPath> {
    const path = new ServerPath(standIn);
    await path.listenWith(createServer((client) => path.carry(client, connect(serverPort, '127.0.0.1'))));
    return path;
  }

  private carry(client: Socket, upstream: Socket): void {
    this.hold(client);
    this.hold(upstream);
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
          this.standIn.take(accept);
          client.write(JSON.stringify({ ...object, host: '127.0.0.1', port: this.standIn.port }) + '\n');
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
export class ForwardingRelay extends LoopbackPiece implements StandIn {
  /** Where to forward to; set by the time the requester connects. */
  private target: Accept | null = null;
  private readonly chunks: Buffer[] = [];

  static async start(): Promise<ForwardingRelay> {
    const relay = new ForwardingRelay();
    await relay.listenWith(
      createServer((requester) => {
        const { host, port } = relay.target!;
        const listener = connect(port, host);
        for (const socket of [requester, listener]) {
          relay.hold(socket);
          socket.on('data', (chunk: Buffer) => relay.chunks.push(chunk));
        }
        join(requester, listener);
      }),
    );
    return relay;
  }

  take(accept: Accept): void {
    this.target = accept;
  }

  /** Every byte forwarded so far, both ways. */
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * A relay that answers the requester with a certificate of its own and
 * connects on to the listener with it, claiming to be the requester (it
 * passes the requester's TLS server name on, the one thing it can), then
 * passes on whatever either side says: a third party on the path.
 */
export class ImpostorRelay extends LoopbackPiece implements StandIn {
  private target: Accept | null = null;
  /** What the requester sent it inside TLS. */
  fromRequester = '';
  /** Connections on to the listener, each waiting for the requester whose hello started it. */
  private readonly waiting: TLSSocket[] = [];

  static async start(): Promise<ImpostorRelay> {
    const relay = new ImpostorRelay();
    const { key, cert } = await makePeerIdentity();
    const context = createSecureContext({ key, cert, minVersion: 'TLSv1.3' });
    const server = createTlsServer({
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
        relay.hold(upstream);
        upstream.on('error', () => upstream.destroy());
        relay.waiting.push(upstream);
        done(null, context);
      },
    });
    server.on('secureConnection', (requester: TLSSocket) => {
      relay.hold(requester);
      const upstream = relay.waiting.shift();
      if (!upstream) return void requester.destroy();
      requester.on('data', (chunk: Buffer) => (relay.fromRequester += chunk.toString()));
      join(requester, upstream);
    });
    await relay.listenWith(server);
    return relay;
  }

  take(accept: Accept): void {
    this.target = accept;
  }
}

/**
 * Answers in the listener's place with a certificate of its own, and
 * presents the right token (the test hands it over) in a welcome.
 */
export class FakeListener extends LoopbackPiece implements StandIn {
  private token = '';
  /** What the requester sent it inside TLS. */
  fromRequester = '';
  /** How many requesters connected to it. */
  connections = 0;

  static async start(peerName: string): Promise<FakeListener> {
    const fake = new FakeListener();
    const { key, cert } = await makePeerIdentity();
    const server = createTlsServer({ key, cert, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (requester) => {
      fake.hold(requester);
      requester.on('error', () => requester.destroy());
      requester.on('data', (chunk: Buffer) => (fake.fromRequester += chunk.toString()));
      requester.write(JSON.stringify({ type: 'welcome', from: peerName, token: fake.token }) + '\n');
    });
    server.on('connection', () => fake.connections++);
    await fake.listenWith(server);
    return fake;
  }

  take(accept: Accept): void {
    this.token = accept.token;
  }
}

/** Takes the requester's connection and closes it without a word: a listener over its cap does that. */
export class HangUp extends LoopbackPiece implements StandIn {
  static async start(): Promise<HangUp> {
    const hangUp = new HangUp();
    await hangUp.listenWith(createServer((requester) => requester.destroy()));
    return hangUp;
  }

  take(): void {}
}
