import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { newSecret, scryptPasswords } from '../../handlers/passwords.js';
import { sweepIdleSessions } from '../../handlers/sweep.js';
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
const timeout = 2;

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
  worker = await startWorker({ REDIS_URL: redis.url, IM_TIMEOUT: String(timeout), IM_POLL_INTERVAL: '100' });
  api = httpApi(worker.base);
});

afterAll(async () => {
  await worker?.stop();
  await store?.close();
  await redis?.stop();
});

async function login(user: string, password: string) {
  const { status, body } = await api.login(user, password);
  expect(status, JSON.stringify(body)).toBe(200);
  return { token: String(body.token), cursor: String(body.cursor) };
}

/** Long-polls the Worker holds right now, from its /metrics (one isolate under wrangler dev). */
async function parkedPolls(): Promise<number> {
  const text = await (await fetch(`${worker.base}/metrics`)).text();
  return Number(/^im_parked_polls (\d+)$/m.exec(text)?.[1] ?? NaN);
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
    const parked = api.events(luke.token, `after=${caughtUp.cursor}&wait=30`);
    await vi.waitFor(async () => expect(await parkedPolls()).toBe(1), WAIT);
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

/** Sessions the Worker's cron has ended for inactivity, from its /metrics (one isolate under wrangler dev). */
async function workerTimeouts(): Promise<number> {
  const text = await (await fetch(`${worker.base}/metrics`)).text();
  return Number(/^im_sessions_timed_out_total (\d+)$/m.exec(text)?.[1] ?? NaN);
}

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
    const workerBefore = await workerTimeouts();
    const byNode = sweepIdleSessions(nodeSweep);
    await foundVader;

    // The Worker's cron ends vader's session while the Node sweep still holds him as a candidate.
    await api.scheduled();
    const ended = (await api.events(vader.token, `after=${vader.cursor}&wait=0`)).body.events ?? [];
    expect(ended.filter((e: { type: string }) => e.type === 'session_end')).toMatchObject([{ reason: 'timeout' }]);
    expect((await workerTimeouts()) - workerBefore).toBe(1);

    // Then the Node sweep goes on: its claim must fail, and it announces nothing.
    release();
    expect(await byNode).toEqual([]);
    const { body } = await api.events(luke.token, `after=${luke.cursor}&wait=0`);
    const outs = body.events.filter((e: { text: string }) => e.text === 'vader logged out');
    expect(outs).toHaveLength(1);
    expect(outs[0]).toMatchObject({ type: 'presence', state: 'out', reason: 'timeout' });
    expect(await api.command(vader.token, 'whoelse')).toMatchObject({ status: 401 });
    await api.logout(luke.token);
  });
});
