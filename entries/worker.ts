import { Redis } from 'ioredis';
import { isIP } from 'node:net';
import { fail, httpStatus, texts } from '../handlers/replies.js';
import type { Logger } from '../handlers/types.js';
import { createContext } from './context.js';
import { logs, secretFields } from './log-fields.js';
import { sweepOnce } from './sweeper.js';
import { RedisState } from '../state/redis.js';
import { useBundledScripts } from '../state/scripts.js';
// Generated at build time by entries/worker-build.ts (wrangler.toml [build]).
import { scripts, webFiles } from '../.wrangler/generated/worker-files.js';
import { createHttpApp } from '../transports/http.js';
import { Metrics } from '../transports/metrics.js';
import { PolledWakeups } from '../delivery/wakeups.js';
import type { WebFiles } from '../transports/web.js';
import { workerOptions, type WorkerOptions } from './worker-config.js';

/** The few Workers runtime types this entry uses (no @cloudflare/workers-types dependency). */
interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}
interface ScheduledController {
  cron: string;
  scheduledTime: number;
}
type Env = Record<string, unknown>;

useBundledScripts(scripts);
const web: WebFiles = new Map(webFiles.map(([path, type, body]) => [path, { type, body: Buffer.from(body, 'base64') }]));
// The app counts into it as on Node, but a Worker serves no /metrics: it has
// no port apart from the public one (Cloudflare's dashboard shows its
// requests, errors and CPU time), and an isolate has no process to describe.
const metrics = new Metrics({ process: false });

/**
 * Cloudflare's edge sets `cf-connecting-ip` on every request from the
 * internet; a client cannot forge it. A request without a valid one did not
 * come through the edge (another Worker's subrequest, a misrouted call) and
 * has no address for the address lock and the login rate, so it is refused
 * rather than counted with every other such request under one name.
 */
const noClientAddress = {
  ok: false,
  error: 'no_client_address',
  text: 'Error. The request carries no valid client address (cf-connecting-ip). Please connect through Cloudflare',
};

/** One JSON object per line on the Worker's log (wrangler tail, Workers Logs), from `least` up. */
function logger(least: WorkerOptions['logLevel']): Logger {
  return (level, message, fields = {}) => {
    if (!logs(least, level)) return;
    const entry: Record<string, unknown> = { level, msg: message };
    for (const [key, value] of Object.entries(fields)) {
      entry[key] = secretFields.has(key) ? '[redacted]' : value instanceof Error ? (value.stack ?? String(value)) : value;
    }
    console[level](JSON.stringify(entry));
  };
}

/**
 * What one request or one cron run works with. A Worker's I/O objects
 * belong to the request that made them, so each gets its own Redis
 * connection (opened at its first command) and closes it when done; the
 * subscriber connection RedisState is given is never used here (wake-ups
 * are polled, see PolledWakeups), so it never connects.
 */
function open(options: WorkerOptions) {
  const redis = new Redis(options.redis, {
    lazyConnect: true,
    enableAutoPipelining: true,
    enableReadyCheck: false,
    // As on Node (state/connect.ts): a Redis outage is an `unavailable` reply within seconds, not a hang.
    maxRetriesPerRequest: 2,
    commandTimeout: 1500,
    connectTimeout: 5000,
  });
  const state = new RedisState(redis, redis.duplicate());
  return { state, ctx: createContext(state, options.config, logger(options.logLevel)) };
}

function settings(env: Env): WorkerOptions | null {
  try {
    return workerOptions(env);
  } catch (err) {
    logger('error')('error', 'the Worker is misconfigured', { err: (err as Error).message });
    return null;
  }
}

/**
 * The Workers entry: the same Hono app as the Node replica's HTTP side
 * (transports/http.ts), and the inactivity sweeper as a Cron Trigger. No TCP
 * transport and no peer-to-peer: a Worker answers HTTP requests only.
 */
export default {
  async fetch(request: Request, env: Env, exec: ExecutionContext): Promise<Response> {
    const address = request.headers.get('cf-connecting-ip') ?? '';
    if (!isIP(address)) return Response.json(noClientAddress, { status: 400, headers: { 'cache-control': 'no-store' } });
    const options = settings(env);
    if (!options) {
      const reply = fail('', 'unavailable', texts.unavailable);
      return Response.json(reply, { status: httpStatus(reply) });
    }
    const { state, ctx } = open(options);
    const { app } = createHttpApp({
      ctx,
      live: new PolledWakeups(state, options.pollInterval),
      metrics,
      webFiles: web,
      // Set by Cloudflare's edge (and by wrangler dev, when a client sends none) to the client's address.
      clientAddress: () => address,
    });
    try {
      return await app.fetch(request);
    } finally {
      exec.waitUntil(state.close());
    }
  },

  /** Every replica sweeps, and so does the Worker: each timeout is still claimed, and announced, once. */
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    const options = settings(env);
    if (!options) return;
    const { state, ctx } = open(options);
    try {
      await sweepOnce(ctx, metrics);
    } finally {
      await state.close();
    }
  },
};
