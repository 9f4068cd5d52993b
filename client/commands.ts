import type { Outcome, Reply, ServerLink } from './connection.js';
import { maxPrivateText, type PeerChat } from './peer.js';
import type { PrivateRequests } from './private-requests.js';
import { clientTexts, replyText } from './render.js';

/** Refusals that leave a private-chat request where it was. */
const retryable = new Set(['rate_limited', 'unavailable']);

/**
 * What a typed line does once logged in. Most lines go to the server as they
 * are and their reply is printed; `private` and `stopprivate` are handled
 * here over the peer connection; `y`/`n` answer a waiting private-chat
 * request, by name (`y vader`) or, when only one waits, plainly.
 */
export class Commands {
  constructor(
    private readonly link: ServerLink,
    private readonly peers: PeerChat,
    private readonly requests: PrivateRequests,
    private readonly print: (text: string) => void,
  ) {}

  /** Runs one typed line; resolves once its reply, if any, was printed. */
  async run(line: string): Promise<void> {
    if (line.trim() === '') return;
    const answer = /^(y|yes|n|no)(?: +([^ ]+))?$/i.exec(line.trim());
    if (answer) {
      const yes = answer[1].toLowerCase().startsWith('y');
      const waiting = this.requests.users;
      if (answer[2] !== undefined) return this.answer(answer[2], yes);
      if (waiting.length === 1) return this.answer(waiting[0], yes);
      // Never guess which one: ask again, naming them all.
      if (waiting.length > 1) return this.requests.remind();
      // Nothing waits: an ordinary command, which the server judges.
    }
    const space = line.indexOf(' ');
    const verb = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    if (verb === 'private') return this.privateText(rest);
    if (verb === 'stopprivate') return this.stopPrivate(rest);
    // Typed in full, an answer still has to prepare the peer listener.
    if ((verb === 'acceptprivate' || verb === 'declineprivate') && /^[^ ]+$/.test(rest)) {
      return this.answer(rest, verb === 'acceptprivate');
    }
    // The server does not know which chats are open: asking again would ask the other user again.
    if (verb === 'startprivate' && this.peers.has(rest)) return this.print(clientTexts.privateAlready(rest));
    await this.toServer(line, (reply) => {
      // A later block closes a private chat with that user, and no answer is owed to them.
      if (verb === 'block' && reply.ok) {
        this.peers.stop(rest);
        this.requests.remove(rest);
      }
    });
  }

  private async answer(from: string, yes: boolean): Promise<void> {
    /** Whether the server settled the request: answered it, or said there is none to answer. */
    let settled = false;
    const decided = (reply: Reply) => (settled = reply.ok || !retryable.has(String(reply.error)));
    if (yes) {
      this.peers.accepting(from);
      await this.toServer(`acceptprivate ${from}`, (reply) => {
        decided(reply);
        if (reply.ok && typeof reply.token === 'string' && typeof reply.fingerprint === 'string') {
          this.peers.expect(from, reply.token, reply.fingerprint);
        }
      });
      this.peers.answered(from);
    } else {
      await this.toServer(`declineprivate ${from}`, (reply) => {
        decided(reply);
        // The server's reply to a decline is empty: say what the answer did.
        if (reply.ok) this.print(clientTexts.privateYouDeclined(from));
      });
    }
    // A reply lost with the connection, or a refusal for now, leaves the question open.
    if (!settled) return;
    this.requests.remove(from);
    // The others still waiting are asked again once this answer's output is shown.
    this.requests.scrolled();
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
}
