import { Hono, type Context as HonoContext } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { withId } from '../handlers/events.js';
import { tokenUser } from '../handlers/login.js';
import { dispatch } from '../handlers/registry.js';
import { fail, httpStatus, texts } from '../handlers/replies.js';
import type { Caller, Context, Reply } from '../handlers/types.js';
import type { PollResult } from '../state/index.js';
import type { Live } from './live.js';
import type { Metrics } from './metrics.js';
import { mountWebClient } from './web.js';

export interface HttpOptions {
  ctx: Context;
  live: Live;
  metrics: Metrics;
  /** The client address of a request, as the host sees it (after trusted proxies). */
  clientAddress(c: HonoContext): string;
}

const eventsPerPoll = 200;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const eventsUsage = 'Usage: GET /events?after=<cursor>&wait=<seconds>';
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

  const send = (c: HonoContext, reply: Reply) => c.json(reply, httpStatus(reply) as 200);
  const caller = (c: HonoContext): Caller => {
    const token = /^Bearer (\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const user = token ? tokenUser(token) : null;
    return { address: o.clientAddress(c), ...(user && token ? { session: { user, token } } : {}) };
  };

  app.use(
    '*',
    bodyLimit({
      maxSize: ctx.config.maxBodyBytes,
      onError: (c) => send(c, fail('', 'too_long', texts.bodyTooLong(ctx.config.maxBodyBytes))),
    }),
  );

  app.post('/login', async (c) => {
    const body = await readBody(c);
    if (typeof body !== 'string') return send(c, body);
    const fields = parseFields(c, body);
    const { username, password } = fields ?? {};
    if (typeof username !== 'string' || typeof password !== 'string' || username === '' || password === '') {
      return send(c, fail('login', 'usage', loginUsage));
    }
    // A name with spaces can never be a user; keep it one word so the rest
    // of the line is not taken for the password of someone else.
    const name = /^\S+$/.test(username) ? username : '!';
    return send(c, await dispatch(ctx, { address: o.clientAddress(c) }, `login ${name} ${password}`));
  });

  app.post('/command', async (c) => {
    const body = await readBody(c);
    if (typeof body !== 'string') return send(c, body);
    let line = body.replace(/\r?\n$/, '');
    if (isJson(c)) {
      const fields = parseFields(c, body);
      if (typeof fields?.line !== 'string') return send(c, fail('', 'usage', commandUsage));
      line = fields.line;
    }
    metrics.commands.inc();
    return send(c, await dispatch(ctx, caller(c), line));
  });

  app.post('/logout', async (c) => send(c, await dispatch(ctx, caller(c), 'logout')));

  app.get('/events', async (c) => {
    const who = caller(c).session;
    if (!who) return send(c, fail('events', 'not_logged_in', texts.notLoggedIn));
    const afterText = c.req.query('after');
    const waitText = c.req.query('wait') ?? '25';
    if ((afterText !== undefined && !/^\d{1,15}$/.test(afterText)) || !/^\d{1,4}$/.test(waitText)) {
      return send(c, fail('events', 'usage', eventsUsage));
    }
    const after = afterText === undefined ? null : Number(afterText);
    const waitMs = Math.min(Number(waitText), 60) * 1000;

    let result = await ctx.state.poll(who.user, who.token, after, eventsPerPoll);
    if (result.ok && result.events.length === 0 && waitMs > 0 && !closing) {
      result = await park(who.user, who.token, after, waitMs, c.req.raw.signal);
    }
    if (!result.ok) {
      const text = result.reason === 'ended' ? texts.sessionEnded : texts.notLoggedIn;
      return send(c, fail('events', 'not_logged_in', text));
    }
    metrics.eventsDelivered.inc(result.events.length);
    return c.body(eventsBody(result), 200, { 'content-type': 'application/json' });
  });

  /** Holds a poll until the user's inbox grows, the wait passes or the client leaves. */
  async function park(user: string, token: string, after: number | null, waitMs: number, signal: AbortSignal) {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const stop = await live.listen(user, () => wake());
    try {
      // Subscribed now: anything appended from here on wakes us, and this
      // read catches whatever came in between.
      let result: PollResult = await ctx.state.poll(user, token, after, eventsPerPoll);
      if (result.ok && result.events.length === 0 && !closing) {
        const timer = setTimeout(wake, waitMs);
        signal.addEventListener('abort', wake, { once: true });
        metrics.parkedPolls.inc();
        await woken;
        metrics.parkedPolls.dec();
        clearTimeout(timer);
        signal.removeEventListener('abort', wake);
        result = await ctx.state.poll(user, token, after, eventsPerPoll);
      }
      return result;
    } finally {
      stop();
    }
  }

  mountWebClient(app);
  app.get('/healthz', (c) => c.json({ ok: true, text: 'ok' }));
  app.get('/readyz', async (c) => {
    const ready = !closing && (await ctx.state.ping().catch(() => false));
    return ready ? c.json({ ok: true, text: 'ready' }) : c.json({ ok: false, text: texts.unavailable }, 503);
  });
  app.get('/metrics', (c) => c.text(metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4' }));

  app.notFound((c) => c.json({ ok: false, error: 'not_found', text: 'Error. Unknown route' }, 404));
  app.onError((err, c) => {
    ctx.log?.('error', 'request failed', { path: c.req.path, error: String(err) });
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

async function readBody(c: HonoContext): Promise<string | Reply> {
  try {
    return utf8.decode(await c.req.arrayBuffer());
  } catch {
    return fail('', 'invalid_command', texts.invalidCharacters);
  }
}

function isJson(c: HonoContext): boolean {
  return (c.req.header('content-type') ?? '').includes('json');
}

/** JSON object or form fields of a request body; unknown fields are ignored. */
function parseFields(c: HonoContext, body: string): Record<string, unknown> | null {
  if (isJson(c)) {
    try {
      const value: unknown = JSON.parse(body);
      return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }
  return Object.fromEntries(new URLSearchParams(body));
}

/** `{"events":[...],"cursor":"N"}`, spliced from the stored encodings without re-encoding them. */
function eventsBody(result: Extract<PollResult, { ok: true }>): string {
  const events = result.events.map((e) => withId(e.json, e.id)).join(',');
  return `{"events":[${events}],"cursor":"${result.cursor}"${result.gap ? ',"gap":true' : ''}}`;
}
