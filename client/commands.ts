import type { Outcome, Reply, ServerLink } from './connection.js';
import { maxPrivateText, type PeerChat } from './peer.js';
import { clientTexts, replyText } from './render.js';

/**
 * What a typed line does once logged in. Most lines go to the server as they
 * are and their reply is printed; `private` and `stopprivate` are handled
 * here over the peer connection; `y`/`n` answer a pending private-chat request.
 */
export class Commands {
  /** Users who asked for a private chat and wait for a y/n, oldest first. */
  private readonly asking: string[] = [];

  constructor(
    private readonly link: ServerLink,
    private readonly peers: PeerChat,
    private readonly print: (text: string) => void,
  ) {}

  /** A private_request event arrived (its prompt was printed with it). */
  asked(from: string): void {
    if (!this.asking.includes(from)) this.asking.push(from);
  }

  /** The session could not be resumed: its requests went with it. */
  sessionEnded(): void {
    this.asking.length = 0;
  }

  /** Runs one typed line; resolves once its reply, if any, was printed. */
  async run(line: string): Promise<void> {
    const answer = /^(y|yes|n|no)$/i.exec(line.trim());
    if (answer && this.asking.length) return this.answer(this.asking.shift()!, answer[1].toLowerCase().startsWith('y'));
    if (line.trim() === '') return;
    const space = line.indexOf(' ');
    const verb = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    if (verb === 'private') return this.privateText(rest);
    if (verb === 'stopprivate') return this.stopPrivate(rest);
    // The server does not know which chats are open: asking again would ask the other user again.
    if (verb === 'startprivate' && this.peers.has(rest)) return this.print(clientTexts.privateAlready(rest));
    await this.toServer(line, (reply) => {
      // A later block closes a private chat with that user, and no answer is owed to them.
      if (verb === 'block' && reply.ok) {
        this.peers.stop(rest);
        this.forget(rest);
      }
    });
  }

  private async answer(from: string, yes: boolean): Promise<void> {
    if (!yes) {
      await this.toServer(`declineprivate ${from}`);
      return;
    }
    this.peers.accepting(from);
    await this.toServer(`acceptprivate ${from}`, (reply) => {
      if (reply.ok && typeof reply.token === 'string') this.peers.expect(from, reply.token);
    });
    this.peers.answered(from);
    const next = this.asking[0];
    // One question at a time: ask the next waiting user again.
    if (next) this.print(clientTexts.privateRequest(next));
  }

  private async privateText(rest: string): Promise<void> {
    const match = /^([^ ]+) (.+)$/s.exec(rest);
    if (!match || match[2].trim() === '') return this.print(clientTexts.usagePrivate);
    const [, peer, text] = match;
    this.touch();
    if (text.length > maxPrivateText) this.print(clientTexts.privateTooLong(maxPrivateText));
    else if (!this.peers.send(peer, text)) this.print(clientTexts.privateNotEnabled(peer));
  }

  private async stopPrivate(rest: string): Promise<void> {
    if (!/^[^ ]+$/.test(rest)) return this.print(clientTexts.usageStopprivate);
    this.touch();
    if (!this.peers.stop(rest)) this.print(clientTexts.privateNotEnabled(rest));
  }

  /**
   * The server never sees private lines, yet they are activity (SPEC section
   * 2): `touch` says so. Its reply is empty unless the session is in trouble.
   * Not awaited: a private line must not wait for the server.
   */
  private touch(): void {
    void this.link.send('touch', (reply) => {
      if (!reply.ok) this.print(reply.text);
    });
  }

  private async toServer(line: string, after: (reply: Reply) => void = () => undefined): Promise<Outcome> {
    const outcome = await this.link.send(line, (reply) => {
      const text = replyText(reply);
      if (text !== null) this.print(text);
      after(reply);
    });
    const verb = line.split(' ')[0];
    if (outcome === 'lost') this.print(clientTexts.unconfirmed(verb));
    if (outcome === 'unsent') this.print(clientTexts.notSent(verb));
    return outcome;
  }

  private forget(user: string): void {
    const index = this.asking.indexOf(user);
    if (index >= 0) this.asking.splice(index, 1);
  }
}
