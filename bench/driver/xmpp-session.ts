import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { WireObject } from './tcp-session.js';

/**
 * A minimal XMPP client (RFC 6120/6121), enough to drive a real XMPP server
 * (ejabberd, Prosody) through the bench's load loops as the TCP sessions
 * drive ours: open a stream, SASL PLAIN, restart the stream, bind a
 * resource, start a session if the server requires one, send initial
 * presence, then send `<message type='chat'>` stanzas and parse the ones
 * that arrive. No TLS, no stream management, no roster: the peers run with
 * plain authentication allowed on loopback (bench/runner/peers.ts).
 *
 * Parsing is a small streaming scanner, no dependency: stanzas are the
 * top-level children of `<stream:stream>`, so it only tracks element depth
 * (skipping quoted attribute values, comments and processing instructions)
 * and hands each complete top-level element to the session as a string. A
 * `<message>` is read for its `from`, `type`, first `<body>` and, for an
 * error bounce, its error condition; everything else is counted.
 */

const STREAM_NS = 'http://etherx.jabber.org/streams';

/** `<`, `>`, `&`, quotes: the characters XML text and attribute values cannot carry raw. */
export function escapeXml(text: string): string {
  return /[<>&'"]/.test(text) ? text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!) : text;
}

/** The five predefined entities and character references. */
export function unescapeXml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(lt|gt|amp|apos|quot|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case 'lt': return '<';
      case 'gt': return '>';
      case 'amp': return '&';
      case 'apos': return "'";
      case 'quot': return '"';
      default: return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

/**
 * Splits a stream into its header and its top-level elements. Feed it text
 * as it arrives (utf8-decoded, so a character is never split); `reset()`
 * when the stream restarts (after SASL success).
 */
export class StanzaScanner {
  private buffer = '';
  private pos = 0;
  private depth = 0;
  private elementStart = 0;

  constructor(
    private readonly onStreamOpen: (header: string) => void,
    private readonly onStanza: (raw: string) => void,
    private readonly onStreamClose: () => void,
  ) {}

  reset(): void {
    this.buffer = '';
    this.pos = 0;
    this.depth = 0;
    this.elementStart = 0;
  }

  feed(chunk: string): void {
    this.buffer += chunk;
    const b = this.buffer;
    for (;;) {
      const lt = b.indexOf('<', this.pos);
      if (lt < 0) {
        this.pos = b.length;
        break;
      }
      const next = b.charCodeAt(lt + 1);
      if (Number.isNaN(next)) {
        this.pos = lt;
        break;
      }
      if (next === 0x3f /* ? */ || next === 0x21 /* ! */) {
        const close = next === 0x3f ? '?>' : b.startsWith('<![CDATA[', lt) ? ']]>' : b.startsWith('<!--', lt) ? '-->' : '>';
        const end = b.indexOf(close, lt + 2);
        if (end < 0) {
          this.pos = lt;
          break;
        }
        this.pos = end + close.length;
        continue;
      }
      // The tag's closing '>', outside quoted attribute values.
      let quote = 0;
      let gt = -1;
      for (let i = lt + 1; i < b.length; i++) {
        const c = b.charCodeAt(i);
        if (quote) {
          if (c === quote) quote = 0;
        } else if (c === 0x22 || c === 0x27) quote = c;
        else if (c === 0x3e) {
          gt = i;
          break;
        }
      }
      if (gt < 0) {
        this.pos = lt;
        break;
      }
      this.pos = gt + 1;
      if (next === 0x2f /* / */) {
        this.depth--;
        if (this.depth === 1) this.onStanza(b.slice(this.elementStart, gt + 1));
        else if (this.depth <= 0) {
          this.depth = 0;
          this.onStreamClose();
        }
      } else if (this.depth === 0) {
        this.depth = 1;
        this.onStreamOpen(b.slice(lt, gt + 1));
      } else if (b.charCodeAt(gt - 1) === 0x2f) {
        if (this.depth === 1) this.onStanza(b.slice(lt, gt + 1));
      } else {
        if (this.depth === 1) this.elementStart = lt;
        this.depth++;
      }
      if (this.buffer !== b) return; // reset() from a handler: the rest of this chunk belongs to no stream yet
    }
    const keep = this.depth >= 2 ? Math.min(this.elementStart, this.pos) : this.pos;
    if (keep > 0) {
      this.buffer = b.slice(keep);
      this.pos -= keep;
      this.elementStart -= keep;
    }
  }
}

/** The element name of a raw element (`message`, `stream:features`, ...). */
export function elementName(raw: string): string {
  let end = 1;
  while (end < raw.length) {
    const c = raw.charCodeAt(end);
    if (c === 0x20 || c === 0x3e || c === 0x2f || c === 0x09 || c === 0x0a || c === 0x0d) break;
    end++;
  }
  return raw.slice(1, end);
}

/** The attributes of an element's start tag. */
export function attributes(raw: string): Record<string, string> {
  const startTag = raw.slice(0, startTagEnd(raw) + 1);
  const out: Record<string, string> = {};
  const re = /\s([A-Za-z_][\w:.-]*)\s*=\s*(?:'([^']*)'|"([^"]*)")/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(startTag))) out[m[1]] = unescapeXml(m[2] ?? m[3] ?? '');
  return out;
}

function startTagEnd(raw: string): number {
  let quote = 0;
  for (let i = 1; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (quote) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) quote = c;
    else if (c === 0x3e) return i;
  }
  return raw.length - 1;
}

/** The text of the first `<name>` child anywhere in the element (`''` if none or empty). */
export function childText(raw: string, name: string): string | null {
  let at = raw.indexOf(`<${name}`, 1);
  while (at >= 0) {
    const after = raw.charCodeAt(at + name.length + 1);
    if (after === 0x3e || after === 0x20 || after === 0x2f) break;
    at = raw.indexOf(`<${name}`, at + 1);
  }
  if (at < 0) return null;
  const gt = raw.indexOf('>', at);
  if (gt < 0) return null;
  if (raw.charCodeAt(gt - 1) === 0x2f) return '';
  const end = raw.indexOf(`</${name}>`, gt);
  return end < 0 ? null : unescapeXml(raw.slice(gt + 1, end));
}

/** The defined condition of a stanza or stream error (`service-unavailable`, ...). */
export function errorCondition(raw: string): string {
  const at = raw.indexOf('<error');
  const from = at >= 0 ? at : raw.indexOf('<stream:error');
  if (from < 0) return 'unknown';
  const m = /<([a-z-]+)[\s/>]/.exec(raw.slice(raw.indexOf('>', from) + 1));
  return m && m[1] !== 'text' ? m[1] : 'unknown';
}

/** `node@domain/resource` split; node and resource may be empty. */
export function splitJid(jid: string): { node: string; domain: string; resource: string } {
  const slash = jid.indexOf('/');
  const bare = slash >= 0 ? jid.slice(0, slash) : jid;
  const at = bare.indexOf('@');
  return { node: at >= 0 ? bare.slice(0, at) : '', domain: at >= 0 ? bare.slice(at + 1) : bare, resource: slash >= 0 ? jid.slice(slash + 1) : '' };
}

export interface XmppTarget {
  host: string;
  port: number;
  /** The XMPP domain the users live on (`localhost`). */
  domain: string;
}

type Waiter = { match: (raw: string) => boolean; resolve: (raw: string) => void };

export class XmppError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One logged-in XMPP client. Events go to `onEvent` shaped as the TCP
 * session's (`{type: 'message', from: <sender's username>, body}`), so the
 * driver's books check them the same way; an error bounce of one of our
 * messages comes as `{type: 'message_error', from, body, error}`.
 */
export class XmppSession {
  closed = false;
  closedByServer = false;
  /** Presence stanzas received (counted, not parsed). */
  presence = 0;
  events = 0;
  jid = '';
  onEvent: (event: WireObject, at: number) => void = () => undefined;
  onClose: () => void = () => undefined;
  private readonly scanner: StanzaScanner;
  private readonly waiters: Waiter[] = [];
  private header: ((raw: string) => void) | null = null;
  private closing = false;
  private failure: ((err: Error) => void) | null = null;

  private constructor(
    readonly user: string,
    readonly target: XmppTarget,
    readonly socket: Socket,
  ) {
    this.scanner = new StanzaScanner(
      (raw) => this.header?.(raw),
      (raw) => this.stanza(raw),
      () => this.socket.end(),
    );
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.scanner.feed(chunk));
    socket.on('close', () => {
      this.closed = true;
      if (!this.closing) this.closedByServer = true;
      this.failure?.(new XmppError('connection_closed', `${user}: the server closed the connection`));
      this.onClose();
    });
    socket.on('error', () => undefined);
  }

  /** Connects and logs in (stream, SASL PLAIN, restart, bind, session if required, presence); rejects with an XmppError. */
  static async open(target: XmppTarget, user: string, password: string, timeoutMs: number): Promise<XmppSession> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new XmppError('connect_failed', `XMPP connect to ${target.host}:${target.port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new XmppError('connect_failed', err.message));
      });
    });
    const session = new XmppSession(user, target, socket);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        session.login(password),
        new Promise<never>((_, reject) => {
          session.failure = reject;
          timer = setTimeout(() => reject(new XmppError('deadline', `${user}: XMPP login not done within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return session;
    } catch (err) {
      session.close();
      throw err;
    } finally {
      clearTimeout(timer);
      session.failure = null;
    }
  }

  private async login(password: string): Promise<void> {
    const { domain } = this.target;
    let features = await this.openStream();
    const mechanisms = [...features.matchAll(/<mechanism>([^<]*)<\/mechanism>/g)].map((m) => m[1]);
    if (!mechanisms.includes('PLAIN')) throw new XmppError('no_plain', `${this.user}: the server offers no SASL PLAIN (mechanisms: ${mechanisms.join(', ') || 'none'}; STARTTLS required?)`);
    const credentials = Buffer.from(`\0${this.user}\0${password}`, 'utf8').toString('base64');
    this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${credentials}</auth>`);
    const outcome = await this.next((raw) => raw.startsWith('<success') || raw.startsWith('<failure'));
    if (!outcome.startsWith('<success')) throw new XmppError(`sasl_${errorConditionOfFailure(outcome)}`, `${this.user}: SASL PLAIN failed: ${outcome.slice(0, 200)}`);
    features = await this.openStream();
    if (!features.includes('urn:ietf:params:xml:ns:xmpp-bind')) throw new XmppError('no_bind', `${this.user}: no resource binding offered: ${features.slice(0, 300)}`);
    this.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>`);
    const bound = await this.iq('bind');
    this.jid = childText(bound, 'jid') ?? '';
    // RFC 3921 sessions: only if the server still requires one (RFC 6121 made them optional).
    const session = /<session[^>]*urn:ietf:params:xml:ns:xmpp-session[^>]*>([\s\S]*?)<\/session>|<session[^>]*urn:ietf:params:xml:ns:xmpp-session[^>]*\/>/.exec(features);
    if (session && !(session[1] ?? '').includes('<optional')) {
      this.write(`<iq type='set' id='sess' to='${escapeXml(domain)}'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
      await this.iq('sess');
    }
    // Initial presence makes the resource available, so messages to the bare JID reach it
    // rather than offline storage. The ping after it returns only once the server has
    // handled the presence (a stream's stanzas are processed in order): when the login
    // resolves, this user is online for every sender. Any answer will do (a server
    // without XEP-0199 answers with an error).
    this.write(`<presence/><iq type='get' id='ready' to='${escapeXml(domain)}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await this.next((raw) => raw.startsWith('<iq') && attributes(raw).id === 'ready');
  }

  private openStream(): Promise<string> {
    this.scanner.reset();
    const features = this.next((raw) => elementName(raw) === 'stream:features' || raw.startsWith('<features'));
    const header = new Promise<void>((resolve, reject) => {
      this.header = (raw) => {
        this.header = null;
        if (!raw.includes(STREAM_NS)) reject(new XmppError('bad_stream', `${this.user}: not an XMPP stream: ${raw.slice(0, 200)}`));
        else resolve();
      };
    });
    this.write(`<?xml version='1.0'?><stream:stream to='${escapeXml(this.target.domain)}' xmlns='jabber:client' xmlns:stream='${STREAM_NS}' version='1.0'>`);
    return header.then(() => features);
  }

  private async iq(id: string): Promise<string> {
    const raw = await this.next((r) => r.startsWith('<iq') && attributes(r).id === id);
    if (attributes(raw).type !== 'result') throw new XmppError(`iq_${errorCondition(raw)}`, `${this.user}: ${id} failed: ${raw.slice(0, 300)}`);
    return raw;
  }

  /** The next stanza that matches (handshake only: load-time stanzas go to `stanza`). */
  private next(match: (raw: string) => boolean): Promise<string> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  private write(text: string): void {
    if (!this.closed) this.socket.write(text);
  }

  /**
   * Sends one chat message to `to`@domain, with `id` as its stanza id. XMPP
   * has no reply to a message: a refusal comes back, if at all, as an error
   * bounce carrying the id (and, from some servers, the body).
   */
  message(to: string, body: string, id: string): void {
    this.write(`<message to='${escapeXml(to)}@${escapeXml(this.target.domain)}' type='chat' id='${escapeXml(id)}'><body>${escapeXml(body)}</body></message>`);
  }

  /** XMPP sessions take no command lines (the load loops call `message`). */
  command(): Promise<WireObject> {
    return Promise.resolve({ type: 'reply', ok: false, error: 'not_supported', text: 'an XMPP session takes no command lines' });
  }

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    try {
      this.socket.end('</stream:stream>');
    } catch {
      // already gone
    }
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private stanza(raw: string): void {
    const at = performance.now();
    if (this.waiters.length > 0) {
      const k = this.waiters.findIndex((w) => w.match(raw));
      if (k >= 0) {
        this.waiters.splice(k, 1)[0].resolve(raw);
        return;
      }
    }
    const name = elementName(raw);
    if (name === 'message') {
      this.events++;
      const attrs = attributes(raw);
      const jid = splitJid(attrs.from ?? '');
      // The sender's username when it is one of the domain's users, else the whole JID (counted as misrouted).
      const from = jid.domain === this.target.domain && jid.node ? jid.node : (attrs.from ?? '');
      const body = childText(raw, 'body') ?? '';
      if (attrs.type === 'error') this.onEvent({ type: 'message_error', from, body: body || (attrs.id ?? ''), error: errorCondition(raw) }, at);
      else this.onEvent({ type: 'message', from, body }, at);
    } else if (name === 'presence') {
      this.presence++;
      this.events++;
    } else if (name === 'stream:error') {
      this.events++;
      this.failure?.(new XmppError(`stream_${errorCondition(raw)}`, `${this.user}: stream error: ${raw.slice(0, 300)}`));
    } else if (name === 'iq') {
      // A server's iq to us (a ping, a version query): answer as a client must (RFC 6120 8.2.3).
      const attrs = attributes(raw);
      if (attrs.type === 'get' || attrs.type === 'set') {
        const reply = raw.includes("'urn:xmpp:ping'") || raw.includes('"urn:xmpp:ping"') ? `<iq type='result' id='${escapeXml(attrs.id ?? '')}'${attrs.from ? ` to='${escapeXml(attrs.from)}'` : ''}/>` : `<iq type='error' id='${escapeXml(attrs.id ?? '')}'${attrs.from ? ` to='${escapeXml(attrs.from)}'` : ''}><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`;
        this.write(reply);
      }
    } else this.events++;
  }
}

function errorConditionOfFailure(raw: string): string {
  const m = /<failure[^>]*>\s*<([a-z-]+)/.exec(raw);
  return m ? m[1] : 'failure';
}
