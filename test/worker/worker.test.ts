import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { newSecret, scryptPasswords } from '../../handlers/passwords.js';
import { sweepSessions } from '../../handlers/sweep.js';
import { defaultConfig, type Context } from '../../handlers/types.js';
import { importUsers } from '../../handlers/users.js';
import { openState } from '../../state/connect.js';
import type { RedisState } from '../../state/redis.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { httpApi, startWorker, type RunningWorker } from './wrangler.js';

/**
 * The Worker (entries/worker.ts) in local workerd under `wrangler dev`,
 * on a real redis-server: the HTTP transport's behaviours (SPEC section 4),
 * its long-poll woken by polling the streams' heads, and the inactivity
 * timeout through the scheduled handler (the Cron Trigger).
 */

let redis: RedisServer;
let worker: RunningWorker;
let store: RedisState;
let api: ReturnType<typeof httpApi>;
let monitor: Redis | undefined;
const timeout = 2;
/** Per user, how often a Worker has looked at the heads of the user's streams (see headLooks). */
const looks = new Map<string, number>();

const WAIT = { timeout: 20_000, interval: 50 };

beforeAll(async () => {
  redis = await startRedis();
  store = openState(redis.url).state;
  // Users live in the store: a Worker has no credentials file to seed from.
  const seeding: Context = { state: store, clock: { now: () => Date.now() }, config: defaultConfig, passwords: scryptPasswords(1024), secret: newSecret };
  await importUsers(seeding, [
    { user: 'yoda', password: 'wise' },
    { user: 'luke', password: 'sunrise' },
    { user: 'hans', password: 'falcon' },
    { user: 'leia', password: 'alderaan' },
    { user: 'vader', password: 'sithlord' },
  ]);
  // What the Worker asks Redis, seen on MONITOR: a parked poll shows there.
  monitor = await new Redis(redis.url).monitor();
  monitor.on('monitor', (_time: string, args: string[]) => {
    // read-2.lua of no events after position 0: PolledWakeups' look at a user's inbox head.
    const [command, , keyCount, userKey, , after, limit] = args;
    const user = /^u:\{(.+)\}$/.exec(userKey ?? '')?.[1];
    if (/^eval(sha)?$/i.test(command) && keyCount === '2' && user && after === '0' && limit === '0') looks.set(user, (looks.get(user) ?? 0) + 1);
  });
  worker = await startWorker({ REDIS_URL: redis.url, IM_TIMEOUT: String(timeout), IM_POLL_INTERVAL: '100' });
  api = httpApi(worker.base);
});

afterAll(async () => {
  monitor?.disconnect();
  await worker?.stop();
  await store?.close();
  await redis?.stop();
});

async function login(user: string, password: string) {
  const { status, body } = await api.login(user, password);
  expect(status, JSON.stringify(body)).toBe(200);
  return { token: String(body.token), cursor: String(body.cursor) };
}

/**
 * How often a Worker has looked at the heads of `user`'s streams so far. A
 * long-poll that waits (PolledWakeups) looks once as it starts listening and
 * again every IM_POLL_INTERVAL until it is answered; nothing else reads a
 * user's inbox after position 0 for no events. A Worker serves no /metrics,
 * so Redis's MONITOR is where a parked poll shows.
 */
function headLooks(user: string): number {
  return looks.get(user) ?? 0;
}

describe('the Worker as host of the HTTP app', () => {
  it('serves the web client, health and readiness', async () => {
    const page = await fetch(`${worker.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await page.text()).toContain('<html');
    expect((await fetch(`${worker.base}/assets/app.js`)).headers.get('content-type')).toContain('javascript');
    expect((await fetch(`${worker.base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${worker.base}/readyz`)).json()).toMatchObject({ ok: true });
    expect((await fetch(`${worker.base}/nowhere`)).status).toBe(404);
  });

  it('serves no /metrics: the route is unknown, as on a replica\'s public port', async () => {
    const res = await fetch(`${worker.base}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ ok: false, error: 'not_found', text: 'Error. Unknown route' });
  });

  it('refuses a request whose cf-connecting-ip is not an address, and takes IPv4 and IPv6 ones', async () => {
    // wrangler dev sets the header only when a client sends none (or an empty one), as Cloudflare's edge always does.
    for (const value of ['unknown', '999.0.0.1', '10.0.0.1, 10.0.0.2', '10.0.0.1:443', '[2001:db8::1]']) {
      const res = await fetch(`${worker.base}/healthz`, { headers: { 'cf-connecting-ip': value } });
      expect(res.status, value).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json(), value).toEqual({
        ok: false,
        error: 'no_client_address',
        text: 'Error. The request carries no valid client address (cf-connecting-ip). Please connect through Cloudflare',
      });
    }
    expect(await api.login('hans', 'falcon', { 'cf-connecting-ip': 'localhost' })).toMatchObject({ status: 400, body: { error: 'no_client_address' } });
    for (const value of ['203.0.113.9', '2001:db8::7', '::ffff:203.0.113.9']) {
      expect((await fetch(`${worker.base}/healthz`, { headers: { 'cf-connecting-ip': value } })).status, value).toBe(200);
    }
  });
});

describe('login and lockout', () => {
  it('blocks an account after three wrong passwords, even with the right one', async () => {
    expect(await api.login('leia', 'nope')).toMatchObject({ status: 401, body: { error: 'invalid_password', text: 'Invalid Password. Please try again' } });
    await api.login('leia', 'nope');
    expect(await api.login('leia', 'nope')).toMatchObject({
      status: 401,
      body: { text: 'Invalid Password. Your account has been blocked. Please try again later' },
    });
    expect(await api.login('leia', 'alderaan')).toMatchObject({
      status: 403,
      body: { error: 'account_blocked', text: 'Your account is blocked due to multiple login failures. Please try again later' },
    });
  });

  it('blocks a client address after three unknown usernames', async () => {
    // wrangler dev passes a client's CF-Connecting-IP on; Cloudflare's edge sets it itself.
    const from = { 'cf-connecting-ip': '10.20.30.40' };
    expect(await api.login('nobody', 'x', from)).toMatchObject({ status: 401, body: { error: 'invalid_user', text: 'Invalid Username. Please try again' } });
    await api.login('nobody', 'x', from);
    await api.login('nobody', 'x', from);
    expect(await api.login('vader', 'sithlord', from)).toMatchObject({ status: 403, body: { error: 'address_blocked' } });
    // Another address is not affected.
    const vader = await login('vader', 'sithlord');
    expect(await api.login('vader', 'sithlord')).toMatchObject({ status: 409, body: { error: 'already_logged_in', text: 'This user is already logged in' } });
    await api.logout(vader.token);
  });
});

describe('commands, long-poll and logout', () => {
  it('runs commands with the statuses of the spec', async () => {
    const yoda = await login('yoda', 'wise');
    const luke = await login('luke', 'sunrise');
    expect(await api.command(yoda.token, 'message luke Hey Dude')).toMatchObject({ status: 200, body: { ok: true, text: '' } });
    expect(await api.command(yoda.token, 'whoelse')).toMatchObject({ status: 200, body: { users: ['luke'], text: 'luke' } });
    expect(await api.command(yoda.token, 'message yoda hi')).toMatchObject({ status: 400, body: { error: 'self', text: 'Error. Cannot message self' } });
    expect(await api.command(yoda.token, 'mesage luke hi')).toMatchObject({ status: 400, body: { error: 'invalid_command', text: 'Error. Invalid command' } });
    expect(await api.command(luke.token, 'block yoda')).toMatchObject({ status: 200, body: { text: 'yoda is blocked' } });
    expect(await api.command(yoda.token, 'message luke again')).toMatchObject({
      status: 403,
      body: { text: 'Your message could not be delivered as the recipient has blocked you' },
    });
    expect(await api.command(luke.token, 'unblock yoda')).toMatchObject({ status: 200, body: { text: 'yoda is unblocked' } });
    expect(await api.command(luke.token, 'startprivate yoda')).toMatchObject({ body: { error: 'p2p_unsupported' } });
    expect(await api.command('yoda:forged', 'whoelse')).toMatchObject({ status: 401, body: { error: 'not_logged_in' } });
    const events = (await api.events(luke.token, `after=${luke.cursor}&wait=0`)).body.events;
    expect(events.map((e: { text: string }) => e.text)).toEqual(['yoda: Hey Dude']);
    await api.logout(yoda.token);
    await api.logout(luke.token);
  });

  it('wakes a parked long-poll when an event arrives, well before its wait', async () => {
    const yoda = await login('yoda', 'wise');
    const luke = await login('luke', 'sunrise');
    const caughtUp = (await api.events(luke.token, `after=${luke.cursor}&wait=0`)).body;
    const started = Date.now();
    const looked = headLooks('luke');
    const parked = api.events(luke.token, `after=${caughtUp.cursor}&wait=30`);
    // Parked: its wait has looked at luke's heads at least twice after the first look (100 ms apart).
    await vi.waitFor(() => expect(headLooks('luke') - looked).toBeGreaterThanOrEqual(3), WAIT);
    await api.command(yoda.token, 'message luke are you there');
    const { status, body } = await parked;
    expect(status).toBe(200);
    expect(body.events.map((e: { text: string }) => e.text)).toEqual(['yoda: are you there']);
    expect(Date.now() - started).toBeLessThan(20_000);
    await api.logout(yoda.token);
    await api.logout(luke.token);
  });

  it('loses and repeats nothing when every poll passes the last cursor: messages and broadcasts, interleaved', async () => {
    const yoda = await login('yoda', 'wise');
    const luke = await login('luke', 'sunrise');
    const sending = (async () => {
      for (let k = 1; k <= 16; k++) {
        const reply = await api.command(yoda.token, k % 2 ? `message luke d${k}` : `broadcast b${k}`);
        expect(reply.body).toMatchObject({ ok: true });
      }
    })();
    const seen: string[] = [];
    const ids = new Set<string>();
    let cursor = luke.cursor;
    const deadline = Date.now() + 20_000;
    while (seen.length < 16 && Date.now() < deadline) {
      const { body } = await api.events(luke.token, `after=${cursor}&wait=5`);
      for (const e of body.events) {
        expect(ids.has(e.id), `repeated ${e.id}`).toBe(false);
        ids.add(e.id);
        seen.push(e.text);
      }
      cursor = body.cursor;
    }
    await sending;
    expect(seen).toEqual(Array.from({ length: 16 }, (_v, k) => `yoda: ${k % 2 ? 'b' : 'd'}${k + 1}`));
    expect((await api.events(luke.token, `after=${cursor}&wait=0`)).body.events).toEqual([]);
    await api.logout(yoda.token);
    await api.logout(luke.token);
  });

  it('ends a session on logout: session_end once, then 401; others see it', async () => {
    const yoda = await login('yoda', 'wise');
    const luke = await login('luke', 'sunrise');
    const lukeEvents = await api.events(luke.token, `after=${luke.cursor}&wait=0`);
    expect(await api.logout(yoda.token)).toMatchObject({ status: 200, body: { cmd: 'logout', ok: true } });
    const yodaEnd = await api.events(yoda.token, `after=${yoda.cursor}&wait=0`);
    expect(yodaEnd.body.events.at(-1)).toMatchObject({ type: 'session_end', reason: 'logout', text: 'You have been logged out' });
    expect(await api.events(yoda.token, `after=${yodaEnd.body.cursor}&wait=0`)).toMatchObject({ status: 401 });
    const out = await api.events(luke.token, `after=${lukeEvents.body.cursor}&wait=10`);
    expect(out.body.events.map((e: { text: string }) => e.text)).toEqual(['yoda logged out']);
    await api.logout(luke.token);
  });
});

describe('inactivity timeout through the scheduled handler', () => {
  it('the Worker\'s cron alone logs out an idle session, tells its client, and announces it once', async () => {
    const yoda = await login('yoda', 'wise');
    const hans = await login('hans', 'falcon');
    // Nothing else sweeps this store: only the scheduled handler can end hans's session.
    let ended: Record<string, any> | undefined;
    await vi.waitFor(async () => {
      // yoda stays active; hans does nothing.
      expect(await api.command(yoda.token, 'whoelse')).toMatchObject({ status: 200 });
      await api.scheduled();
      const { body } = await api.events(hans.token, `after=${hans.cursor}&wait=0`);
      ended = body.events.find((e: { type: string }) => e.type === 'session_end');
      expect(ended).toBeDefined();
    }, WAIT);
    expect(ended).toMatchObject({ reason: 'timeout', text: 'You have been logged out due to inactivity' });
    await api.scheduled();
    const { body } = await api.events(yoda.token, `after=${yoda.cursor}&wait=0`);
    const outs = body.events.filter((e: { text: string }) => e.text === 'hans logged out');
    expect(outs).toHaveLength(1);
    expect(outs[0]).toMatchObject({ type: 'presence', state: 'out', reason: 'timeout' });
    expect(await api.command(hans.token, 'whoelse')).toMatchObject({ status: 401 });
    await api.logout(yoda.token);
  });

  it('a Node sweep that found the session idle before the Worker\'s cron ended it neither ends nor announces it again', async () => {
    const luke = await login('luke', 'sunrise');
    const vader = await login('vader', 'sithlord');
    // luke stays active; vader does nothing until he is a candidate for every sweep.
    await vi.waitFor(async () => {
      expect(await api.command(luke.token, 'whoelse')).toMatchObject({ status: 200 });
      expect(await store.idleCandidates(Date.now() - timeout * 1000, 500)).toContain('vader');
    }, WAIT);

    // A Node replica's sweep (handlers/sweep.ts, as entries/sweeper.ts runs it) on the
    // same store, held right after it has read its candidates, vader among them.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let found!: () => void;
    const foundVader = new Promise<void>((resolve) => (found = resolve));
    const heldState = new Proxy(store, {
      get(target, name) {
        if (name === 'idleCandidates') {
          return async (before: number, limit: number) => {
            const candidates = await target.idleCandidates(before, limit);
            if (candidates.includes('vader')) {
              found();
              await held;
            }
            return candidates;
          };
        }
        const value = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const nodeSweep: Context = { state: heldState, clock: { now: () => Date.now() }, config: { ...defaultConfig, timeout }, passwords: scryptPasswords(1024), secret: newSecret };
    const byNode = sweepSessions(nodeSweep);
    await foundVader;
    const ends = async () =>
      ((await api.events(vader.token, `after=${vader.cursor}&wait=0`)).body.events ?? []).filter((e: { type: string }) => e.type === 'session_end');
    // Nothing has ended it yet: the Node sweep is held, and nothing else sweeps this store.
    expect(await ends()).toEqual([]);

    // So the Worker's cron is what ends vader's session, while the Node sweep still holds him as a candidate.
    await api.scheduled();
    expect(await ends()).toMatchObject([{ reason: 'timeout' }]);

    // Then the Node sweep goes on: its claim must fail, and it announces nothing.
    release();
    expect((await byNode).timedOut).toEqual([]);
    const { body } = await api.events(luke.token, `after=${luke.cursor}&wait=0`);
    const outs = body.events.filter((e: { text: string }) => e.text === 'vader logged out');
    expect(outs).toHaveLength(1);
    expect(outs[0]).toMatchObject({ type: 'presence', state: 'out', reason: 'timeout' });
    expect(await api.command(vader.token, 'whoelse')).toMatchObject({ status: 401 });
    await api.logout(luke.token);
  });
});
