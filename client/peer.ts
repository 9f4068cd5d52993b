import { createHash } from 'node:crypto';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { makePeerIdentity, matchesFingerprint, sameBytes, type PeerIdentity } from './certificate.js';
import { readJsonLines, writeJsonLine } from './json-lines.js';
import { clientTexts, printable } from './render.js';

/*
 * Peer-to-peer private chat (SPEC section 5), one TLS 1.3 connection per pair
 * of users, each side with its own self-signed certificate (mutual), JSON
 * lines both ways inside it (documented in docs/CLI.md):
 *
 *   requester -> acceptor   TLS ClientHello naming the expected token's label (SNI, see labelOf)
 *   both                    each checks the other's certificate against the fingerprint the server relayed
 *   requester -> acceptor   {"type":"hello","from":"alice","token":"<one-time token>"}
 *   acceptor  -> requester  {"type":"welcome","from":"bob"}, or {"type":"refused"} / {"type":"unverified"} and close
 *   either way              {"type":"private","text":"..."}
 *   either way              {"type":"stop"} and close
 *
 * The server hands the same token to both sides, with the other side's
 * certificate fingerprint: to the requester in its private_accept event, to
 * the acceptor in the acceptprivate reply. The requester sends the token only
 * once the listener's certificate matched; the listener admits a hello only
 * on a connection whose certificate matched the fingerprint given with that
 * token, for that very user, once, and not after it expired.
 */

/** Longest private text, the server's default for message and broadcast. */
export const maxPrivateText = 1000;
const maxLineBytes = 16 * 1024;
/** A requester that never comes loses its token. */
const tokenTtlMs = 120_000;
/** A connection that has not finished its TLS handshake by then is dropped. */
const tlsHandshakeMs = 5_000;
/** How long a connection may take, from its TLS handshake on, to say hello or to be welcomed. */
const handshakeMs = 10_000;
/** A peer that does not close after a stop is cut off. */
const lingerMs = 2_000;
/**
 * Connections not yet admitted to a chat (in their handshake, or waiting
 * for their hello to be judged): one more is closed at once. Chats do not
 * count: each was agreed to and carries a one-time token.
 */
export const maxPendingPeers = 8;

/** A token the server told us to expect: from whom, with which certificate, until when. */
interface Expected {
  peer: string;
  fingerprint: string;
  until: number;
}

/** Where the listener accepts peers, and the fingerprint it answers with: what `p2p` advertises. */
export interface PeerListener {
  host: string;
  port: number;
  fingerprint: string;
}

/**
 * The name of an expected token on the wire: the first 128 bits of its
 * SHA-256, in hex. The requester sends it as the TLS server name, so the
 * listener knows which peer a connection claims to be before any secret
 * crosses it, and can tell its user when that peer's certificate is wrong
 * even if the requester, seeing a wrong certificate itself, hangs up
 * without a word. It reveals nothing of the token.
 */
function labelOf(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 32);
}

export class PeerChat {
  private me = '';
  private identity: PeerIdentity | null = null;
  private context: SecureContext | null = null;
  private server: Server | null = null;
  private host = '';
  /** Connections counted against maxPendingPeers. */
  private pending = 0;
  /** The live private chats, by the other user's name. */
  private readonly chats = new Map<string, Socket>();
  /** Tokens the server told us to expect, by their label. */
  private readonly expected = new Map<string, Expected>();
  /**
   * Users whose acceptprivate is on its way to the server. The server sends
   * the requester its token before our reply comes back, so the requester's
   * connection can beat the reply here: it waits for the answer instead of
   * being refused.
   */
  private readonly answering = new Set<string>();
  /** Connections whose label was unknown while an answer was on its way: judged again when it comes. */
  private held: (() => void)[] = [];

  constructor(private readonly print: (text: string) => void) {}

  /**
   * Listens for peers on a free port of `host`, the address the server
   * connection leaves from, which is the address advertised: the listener
   * is reachable where peers are told to connect and nowhere else. Called
   * again after a new login: the same port, and the chats go on, unless
   * someone else logged in, whose chats they are not and who gets a key
   * pair and certificate of their own.
   */
  async listen(me: string, host: string): Promise<PeerListener> {
    if (this.me !== me || !this.identity) {
      for (const peer of [...this.chats.keys()]) this.stop(peer);
      this.expected.clear();
      this.identity = await makePeerIdentity();
      this.context = createSecureContext({ key: this.identity.key, cert: this.identity.cert, minVersion: 'TLSv1.3' });
    }
    this.me = me;
    if (!this.server || this.host !== host) {
      // Open chats are connections of their own and outlive the old listener.
      this.server?.close();
      const server = createServer((socket) => this.incoming(socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      });
      this.server = server;
      this.host = host;
    }
    const address = this.server.address();
    return { host, port: typeof address === 'object' && address ? address.port : 0, fingerprint: this.identity.fingerprint };
  }

  /** Whether a chat with `peer` is open. */
  has(peer: string): boolean {
    return this.chats.has(peer);
  }

  /** The user said yes to `peer`: hold its connection until the server answers. */
  accepting(peer: string): void {
    this.answering.add(peer);
  }

  /** The acceptprivate reply brought the token `peer` will present, and the fingerprint of `peer`'s certificate. */
  expect(peer: string, token: string, fingerprint: string): void {
    this.expected.set(labelOf(token), { peer, fingerprint, until: Date.now() + tokenTtlMs });
  }

  /** The acceptprivate reply came (or never will): held connections are judged now. */
  answered(peer: string): void {
    this.answering.delete(peer);
    const held = this.held;
    this.held = [];
    for (const judge of held) judge();
  }

  /** Sends a private text; false when there is no chat with `peer`. */
  send(peer: string, text: string): boolean {
    const socket = this.chats.get(peer);
    if (!socket) return false;
    writeJsonLine(socket, { type: 'private', text });
    return true;
  }

  /** Ends the chat with `peer` and tells them; false when there was none. */
  stop(peer: string, options: { quiet?: boolean } = {}): boolean {
    const socket = this.chats.get(peer);
    if (!socket) return false;
    this.chats.delete(peer);
    this.hangUp(socket);
    if (!options.quiet) this.print(clientTexts.privateStopped(peer));
    return true;
  }

  /** Ends every chat (logout, timeout, exit); resolves once the stops are sent or a moment passed. */
  async stopAll(): Promise<void> {
    const sockets = [...this.chats.values()];
    this.chats.clear();
    this.server?.close();
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            socket.once('close', () => resolve());
            setTimeout(resolve, 500).unref();
            this.hangUp(socket);
          }),
      ),
    );
  }

  /**
   * Connects to `peer` after it accepted, with the token the server gave us,
   * and admits only the certificate whose fingerprint came with it. The
   * token is sent only after that check, inside the encrypted channel.
   */
  connect(peer: string, host: string, port: number, token: string, fingerprint: string): void {
    // The server takes only IP addresses in p2p; a name here would be dialled wherever a lookup says.
    if (isIP(host) === 0 || !this.identity) return void this.print(clientTexts.privateUnreachable(peer));
    const { key, cert } = this.identity;
    const socket = connectTls({ host, port, key, cert, servername: labelOf(token), rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    let settled = false;
    const fail = (text: string) => {
      if (settled) return;
      settled = true;
      this.print(text);
      socket.destroy();
    };
    const timer = setTimeout(() => fail(clientTexts.privateUnreachable(peer)), handshakeMs);
    timer.unref();
    socket.on('error', () => fail(clientTexts.privateUnreachable(peer)));
    socket.on('close', () => clearTimeout(timer));
    socket.once('secureConnect', () => {
      // Whoever answered without the relayed certificate is not the peer: it gets nothing.
      if (!matchesFingerprint(socket.getPeerX509Certificate(), fingerprint)) return fail(clientTexts.privateUnverified(peer));
      writeJsonLine(socket, { type: 'hello', from: this.me, token });
    });
    let chat: ((object: Record<string, unknown>) => void) | null = null;
    readJsonLines(socket, maxLineBytes, (object) => {
      if (chat) return chat(object);
      if (object.type === 'unverified') return fail(clientTexts.privateUnverified(peer));
      if (object.type !== 'welcome') return fail(clientTexts.privateRefused(peer));
      settled = true;
      clearTimeout(timer);
      chat = this.startChat(peer, socket);
    });
  }

  private incoming(raw: Socket): void {
    if (this.pending >= maxPendingPeers || !this.context) return void raw.destroy();
    this.pending++;
    let counted = true;
    const release = () => {
      if (!counted) return;
      counted = false;
      this.pending--;
    };
    raw.once('close', release);
    raw.on('error', () => raw.destroy());
    const socket = new TLSSocket(raw, { isServer: true, secureContext: this.context, requestCert: true, rejectUnauthorized: false });
    socket.on('error', () => socket.destroy());
    let timer = setTimeout(() => socket.destroy(), tlsHandshakeMs);
    timer.unref();
    socket.on('close', () => {
      clearTimeout(timer);
      release();
    });
    socket.once('secure', () => {
      clearTimeout(timer);
      timer = setTimeout(() => socket.destroy(), handshakeMs);
      timer.unref();
      this.judge(socket, () => {
        clearTimeout(timer);
        release();
      });
    });
  }

  /**
   * Decides on a connection whose TLS handshake is done: the expectation its
   * label names, then the certificate against that expectation's
   * fingerprint, then the hello. An expectation is spent on the first
   * connection that names it, whatever becomes of it.
   */
  private judge(socket: TLSSocket, admitted: () => void): void {
    const label = typeof socket.servername === 'string' ? socket.servername : '';
    const certificate = socket.getPeerX509Certificate();
    let hello: Record<string, unknown> | null = null;
    let verified: string | null = null;
    let chat: ((object: Record<string, unknown>) => void) | null = null;
    const answer = (type: 'refused' | 'unverified') => {
      writeJsonLine(socket, { type });
      socket.end();
      setTimeout(() => socket.destroy(), lingerMs).unref();
    };
    const checkHello = () => {
      if (!hello || !verified) return;
      const { type, from, token } = hello;
      if (type !== 'hello' || from !== verified || typeof token !== 'string' || !sameLabel(labelOf(token), label)) return answer('refused');
      admitted();
      writeJsonLine(socket, { type: 'welcome', from: this.me });
      chat = this.startChat(verified, socket);
    };
    const decide = () => {
      if (socket.destroyed) return;
      const expected = this.expected.get(label);
      if (!expected) {
        if (this.answering.size > 0) this.held.push(decide);
        else answer('refused');
        return;
      }
      this.expected.delete(label);
      if (expected.until <= Date.now()) return answer('refused');
      if (!matchesFingerprint(certificate, expected.fingerprint)) {
        // Someone who knew whom to claim to be, with another certificate: a
        // third party on the path, or a stale address. Both users are told.
        this.print(clientTexts.privateUnverified(expected.peer));
        return answer('unverified');
      }
      verified = expected.peer;
      checkHello();
    };
    readJsonLines(socket, maxLineBytes, (object) => {
      if (chat) return chat(object);
      // Nothing but one hello may come before the welcome.
      if (hello) return void socket.destroy();
      hello = object;
      checkHello();
    });
    decide();
  }

  /** A handshake succeeded: this socket is now the chat with `peer`. Returns its message handler. */
  private startChat(peer: string, socket: Socket): (object: Record<string, unknown>) => void {
    const previous = this.chats.get(peer);
    // A new chat with the same user replaces the old one (say, after it restarted).
    if (previous) {
      this.chats.delete(peer);
      this.hangUp(previous);
    }
    this.chats.set(peer, socket);
    this.print(clientTexts.privateStart(peer));
    socket.on('close', () => {
      if (this.chats.get(peer) !== socket) return;
      this.chats.delete(peer);
      this.print(clientTexts.privateEnded(peer));
    });
    return (object) => {
      if (object.type === 'private' && typeof object.text === 'string') {
        this.print(clientTexts.privateMessage(peer, printable(object.text)));
      } else if (object.type === 'stop' && this.chats.get(peer) === socket) {
        this.chats.delete(peer);
        this.print(clientTexts.privatePeerStopped(peer));
        socket.end();
      }
    };
  }

  private hangUp(socket: Socket): void {
    writeJsonLine(socket, { type: 'stop' });
    socket.end();
    setTimeout(() => socket.destroy(), lingerMs).unref();
  }
}

/** Labels compared in constant time: a hello's token must be the one its connection named. */
function sameLabel(a: string, b: string): boolean {
  return sameBytes(Buffer.from(a), Buffer.from(b));
}
