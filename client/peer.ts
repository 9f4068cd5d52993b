import { connect, createServer, type Server, type Socket } from 'node:net';
import { readJsonLines, writeJsonLine } from './json-lines.js';
import { clientTexts, printable } from './render.js';

/*
 * Peer-to-peer private chat (SPEC section 5), one TCP connection per pair of
 * users, JSON lines both ways (documented in docs/CLI.md):
 *
 *   requester -> acceptor   {"type":"hello","from":"alice","token":"<one-time token>"}
 *   acceptor  -> requester  {"type":"welcome","from":"bob"}  or  {"type":"refused"} and close
 *   either way              {"type":"private","text":"..."}
 *   either way              {"type":"stop"} and close
 *
 * The server hands the same token to both sides: to the requester in its
 * private_accept event, to the acceptor in the acceptprivate reply. The
 * listener admits a hello only with a token it was given for that very user,
 * once, and not after it expired.
 */

/** Longest private text, the server's default for message and broadcast. */
export const maxPrivateText = 1000;
const maxLineBytes = 16 * 1024;
/** A requester that never comes loses its token. */
const tokenTtlMs = 120_000;
/** How long a connection may take to say hello or to be welcomed. */
const handshakeMs = 10_000;
/** A peer that does not close after a stop is cut off. */
const lingerMs = 2_000;

interface Expected {
  peer: string;
  until: number;
}

export class PeerChat {
  private me = '';
  private readonly server: Server;
  /** The live private chats, by the other user's name. */
  private readonly chats = new Map<string, Socket>();
  /** Tokens the server told us to expect, each for one user. */
  private readonly expected = new Map<string, Expected>();
  /**
   * Users whose acceptprivate is on its way to the server. The server sends
   * the requester its token before our reply comes back, so the requester's
   * hello can beat the reply here: it waits for the answer instead of being
   * refused.
   */
  private readonly answering = new Map<string, (() => void)[]>();

  constructor(private readonly print: (text: string) => void) {
    this.server = createServer((socket) => this.incoming(socket));
  }

  /**
   * Listens for peers on a free port of every interface; resolves with the
   * port. Called again after a new login: the same port, and the chats go on
   * unless someone else logged in, whose chats they are not.
   */
  async listen(me: string): Promise<number> {
    if (this.me !== '' && this.me !== me) {
      for (const peer of [...this.chats.keys()]) this.stop(peer);
      this.expected.clear();
    }
    this.me = me;
    if (!this.server.listening) {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(0, () => resolve());
      });
    }
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** Whether a chat with `peer` is open. */
  has(peer: string): boolean {
    return this.chats.has(peer);
  }

  /** The user said yes to `peer`: hold its hello until the server answers. */
  accepting(peer: string): void {
    if (!this.answering.has(peer)) this.answering.set(peer, []);
  }

  /** The acceptprivate reply brought the token `peer` will present. */
  expect(peer: string, token: string): void {
    this.expected.set(token, { peer, until: Date.now() + tokenTtlMs });
  }

  /** The acceptprivate reply came (or never will): held hellos from `peer` are decided now. */
  answered(peer: string): void {
    const held = this.answering.get(peer) ?? [];
    this.answering.delete(peer);
    for (const decide of held) decide();
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
    this.server.close();
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

  /** Connects to `peer` after it accepted, with the token the server gave us. */
  connect(peer: string, host: string, port: number, token: string): void {
    const socket = connect(port, host);
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
    socket.once('connect', () => writeJsonLine(socket, { type: 'hello', from: this.me, token }));
    let chat: ((object: Record<string, unknown>) => void) | null = null;
    readJsonLines(socket, maxLineBytes, (object) => {
      if (chat) return chat(object);
      if (object.type !== 'welcome') return fail(clientTexts.privateRefused(peer));
      settled = true;
      clearTimeout(timer);
      chat = this.startChat(peer, socket);
    });
  }

  private incoming(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), handshakeMs);
    timer.unref();
    socket.on('close', () => clearTimeout(timer));
    let state: 'hello' | 'held' | 'refused' = 'hello';
    let chat: ((object: Record<string, unknown>) => void) | null = null;
    const refuse = () => {
      state = 'refused';
      writeJsonLine(socket, { type: 'refused' });
      socket.end();
    };
    const admit = (from: string) => {
      clearTimeout(timer);
      writeJsonLine(socket, { type: 'welcome', from: this.me });
      chat = this.startChat(from, socket);
    };
    readJsonLines(socket, maxLineBytes, (object) => {
      if (chat) return chat(object);
      // Nothing but one hello may come before the welcome.
      if (state !== 'hello') return void socket.destroy();
      const { type, from, token } = object;
      if (type !== 'hello' || typeof from !== 'string' || typeof token !== 'string') return refuse();
      if (this.admits(from, token)) return admit(from);
      const held = this.answering.get(from);
      if (!held) return refuse();
      state = 'held';
      held.push(() => {
        if (socket.destroyed) return;
        if (this.admits(from, token)) admit(from);
        else refuse();
      });
    });
  }

  /** Checks a hello and uses its token up: a token admits one connection only. */
  private admits(from: string, token: string): boolean {
    const expected = this.expected.get(token);
    if (!expected || expected.peer !== from) return false;
    this.expected.delete(token);
    return expected.until > Date.now();
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
