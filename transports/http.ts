import { Hono, type Context as HonoContext } from 'hono';
import { tokenUser } from '../handlers/users.js';
import { fail, httpStatus, texts, wireReply } from '../handlers/replies.js';
import { commands, pollVerb } from '../handlers/registry.js';
import type { Caller, Context, Reply } from '../handlers/types.js';
import { Cursor } from '../state/cursor.js';
import { eventLine, type FeedPage } from '../delivery/feed.js';
import { fromSignal, longPoll, ParkedPolls, type ClientGone } from '../delivery/long-poll.js';
import { runCommand } from './commands.js';
import type { Metrics } from './metrics.js';
import type { Wakeups } from '../delivery/wakeups.js';
import { mountWebClient, type WebFiles } from './web.js';

export interface HttpOptions {
  ctx: Context;
  /** How a parked long-poll learns that the session's streams grew (Live on Node). */
  live: Wakeups;
  metrics: Metrics;
  /** The web client's files, for a host without a filesystem (default: read from web/). */
  webFiles?: WebFiles;
  /** The client address of a request, as the host sees it (after trusted proxies). */
  clientAddress(c: HonoContext): string;
  /** How the app reads a request (default: off the web Request, as on a Worker). */
  requests?: RequestHost;
}

/**
 * What the app reads off a request, from what its host has at hand. On Node
 * that is the IncomingMessage and ServerResponse: touching the web Request's
 * body, signal or headers makes @hono/node-server build a whole web Request
 * (a Headers, a ReadableStream, an AbortController) for each request, which
 * took about a sixth of the replica's busy time under the HTTP closed loop
 * and a fifth of a parked poll's heap. On a Worker the web Request is what
 * there is.
 */
export interface RequestHost {
  /** A request header, or undefined. */
  header(c: HonoContext, name: string): string | undefined;
  /** The body's bytes, or 'too_long' as soon as it passes `max` (the rest is not kept). */
  body(c: HonoContext, max: number): Promise<Uint8Array | 'too_long'>;
  /** How a parked poll learns its client left. */
  gone(c: HonoContext): ClientGone;
}

/** A request as a web Request: the Worker's, and the default. */
export const webRequests: RequestHost = {
  header: (c, name) => c.req.header(name),
  async body(c, max) {
    if (Number(c.req.header('content-length') ?? 0) > max) return 'too_long';
    const stream = c.req.raw.body;
    if (!stream) return new Uint8Array(0);
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return joinChunks(chunks, size);
      size += value.byteLength;
      if (size > max) {
        await reader.cancel();
        return 'too_long';
      }
      chunks.push(value);
    }
  },
  gone: (c) => fromSignal(c.req.raw.signal),
};

/** One array of `size` bytes from the chunks of a body. */
export function joinChunks(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return all;
}

/** How long /readyz waits for the state store: a load balancer needs an answer, not a hang. */
const readyDeadlineMs = 1000;
/** API answers are never cached; the web client's files and /commands say how they may be. */
const noStore = { 'cache-control': 'no-store' };
const utf8 = new TextDecoder('utf-8', { fatal: true });
const eventsUsage = 'Usage: GET /events?after=<cursor>&wait=<seconds> (a cursor the server handed out)';
const commandUsage = 'Usage: POST /command with the command line as the body, or {"line":"<command line>"}';
const loginUsage = 'Usage: POST /login with {"username":"<username>","password":"<password>"} or form fields';

/**
 * The HTTP long-poll API (SPEC section 4), built once from the handler
 * registry; @hono/node-server and the Workers entry only host it.
 */
export function createHttpApp(o: HttpOptions) {
  const { ctx, live, metrics } = o;
  let closing = false;
  const app = new Hono();
  const parkedPolls = new ParkedPolls(2);

  const requests = o.requests ?? webRequests;
  const header = requests.header;
  const send = (c: HonoContext, reply: Reply) => c.json(wireReply(reply), httpStatus(reply) as 200, noStore);
  /** The body as text, or the reply that refuses it: too long, or not UTF-8. */
  const readBody = async (c: HonoContext): Promise<string | Reply> => {
    const max = ctx.config.maxBodyBytes;
    const bytes = await requests.body(c, max);
    if (bytes === 'too_long') return fail('', 'too_long', texts.bodyTooLong(max));
    try {
      return utf8.decode(bytes);
    } catch {
      return fail('', 'invalid_command', texts.invalidCharacters);
    }
  };
  const isJson = (c: HonoContext, body: string) => jsonBody(header(c, 'content-type'), body);
  const caller = (c: HonoContext): Caller => {
    const token = /^Bearer (\S+)$/i.exec(header(c, 'authorization') ?? '')?.[1];
    const user = token ? tokenUser(token) : null;
    return { address: o.clientAddress(c), ...(user && token ? { session: { user, token } } : {}) };
  };

  // No middleware: a route with one handler runs without Hono's compose, so
  // a parked poll holds fewer suspended frames. API answers (a login reply
  // carries a token) say `no-store` themselves.
  app.post('/login', async (c) => {
    if (crossSiteForm((name) => header(c, name))) return send(c, fail('login', 'cross_site', texts.crossSiteLogin));
    const body = await readBody(c);
    if (typeof body !== 'string') return send(c, body);
    const fields = parseFields(isJson(c, body), body);
    const { username, password } = fields ?? {};
    if (typeof username !== 'string' || typeof password !== 'string' || username === '' || password === '') {
      return send(c, fail('login', 'usage', loginUsage));
    }
    return send(c, await runCommand(ctx, metrics, 'http', { address: o.clientAddress(c) }, { verb: 'login', args: [username, password] }));
  });

  app.post('/command', async (c) => {
    const body = await readBody(c);
    if (typeof body !== 'string') return send(c, body);
    let line = body.replace(/\r?\n$/, '');
    if (isJson(c, body)) {
      const fields = parseFields(true, body);
      if (typeof fields?.line !== 'string') return send(c, fail('', 'usage', commandUsage));
      line = fields.line;
    }
    return send(c, await runCommand(ctx, metrics, 'http', caller(c), line));
  });

  app.post('/logout', async (c) => {
    const reply = await runCommand(ctx, metrics, 'http', caller(c), 'logout');
    // The CLI prints the words of the session's last event (its session_end)
    // when it logs out; this answer is the last thing a curl user reads.
    return send(c, reply.ok ? { ...reply, text: texts.endLogout } : reply);
  });

  app.get('/events', async (c) => {
    const who = caller(c).session;
    if (!who) return send(c, fail(pollVerb, 'not_logged_in', texts.notLoggedIn));
    const afterText = c.req.query('after');
    const waitText = c.req.query('wait') ?? '25';
    const after = afterText === undefined ? null : Cursor.parse(afterText);
    if ((afterText !== undefined && !after) || !/^\d{1,4}$/.test(waitText)) {
      return send(c, fail(pollVerb, 'usage', eventsUsage));
    }
    const answer = await longPoll(ctx, live, {
      ...who,
      after,
      waitMs: closing ? 0 : Math.min(Number(waitText), 60) * 1000,
      client: requests.gone(c),
      closing: () => closing,
      parked: (delta) => metrics.parkedPolls.inc(delta),
      limit: parkedPolls,
    });
    if (answer === 'none' || answer === 'ended') {
      return send(c, fail(pollVerb, 'not_logged_in', answer === 'ended' ? texts.sessionEnded : texts.notLoggedIn));
    }
    metrics.eventsDelivered.inc({ transport: 'http' }, answer.events.length);
    return c.body(eventsBody(answer), 200, { 'content-type': 'application/json', ...noStore });
  });

  mountWebClient(app, o.webFiles);
  app.get('/healthz', (c) => c.json({ ok: true, text: 'ok' }, 200, noStore));
  // The command table, for clients that must tell a command line from text
  // (the web client's input line): every verb, in the table's order.
  const commandList = { commands: commands.map(({ verb, synopsis, session, typed }) => ({ verb, synopsis, session, typed })) };
  app.get('/commands', (c) => c.json(commandList, 200, { 'cache-control': 'public, max-age=300' }));
  app.get('/readyz', async (c) => {
    const ready = !closing && (await withDeadline(ctx.state.ping(), readyDeadlineMs).catch(() => false));
    return ready ? c.json({ ok: true, text: 'ready' }, 200, noStore) : c.json({ ok: false, text: texts.unavailable }, 503, noStore);
  });

  app.notFound((c) => c.json({ ok: false, error: 'not_found', text: 'Error. Unknown route' }, 404, noStore));
  app.onError((err, c) => {
    ctx.log?.('error', 'request failed', { path: c.req.path, err });
    return send(c, fail('', 'unavailable', texts.unavailable));
  });

  return {
    app,
    /** Stop parking polls and answer the ones held now. */
    shutdown() {
      closing = true;
      live.wakeAll();
    },
  };
}

/**
 * A JSON body: declared so, or one that starts with `{` whatever it is
 * declared as. No command line starts with `{`, and curl sends `-d '{...}'`
 * as a form unless told otherwise, so both body forms work as typed.
 */
function jsonBody(contentType: string | undefined, body: string): boolean {
  return (contentType ?? '').includes('json') || body.trimStart().startsWith('{');
}

/**
 * A login a page of another site made a browser send: a form (or any body
 * but declared JSON, which a browser sends cross-site only after a CORS
 * preflight this server never grants) with `Sec-Fetch-Site: cross-site`, or
 * an `Origin` that is not this host. Curl sends neither header, so its form
 * and JSON logins work as before; so do the web client's (same origin).
 */
function crossSiteForm(header: (name: string) => string | undefined): boolean {
  if ((header('content-type') ?? '').toLowerCase().startsWith('application/json')) return false;
  if (header('sec-fetch-site') === 'cross-site') return true;
  const origin = header('origin');
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== (header('x-forwarded-host') ?? header('host'));
  } catch {
    return true;
  }
}

/** JSON object or form fields of a request body; unknown fields are ignored. */
function parseFields(json: boolean, body: string): Record<string, unknown> | null {
  if (json) {
    try {
      const value: unknown = JSON.parse(body);
      return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }
  return Object.fromEntries(new URLSearchParams(body));
}

/** `{"events":[...],"cursor":"..."}`, spliced from the stored encodings without re-encoding them. */
function eventsBody(page: FeedPage): string {
  const events = page.events.map((e) => eventLine(e.json, e.cursor)).join(',');
  return `{"events":[${events}],"cursor":"${page.cursor}"${page.gap ? ',"gap":true' : ''}}`;
}

/** Settles like `promise`, or rejects once `ms` pass first. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
