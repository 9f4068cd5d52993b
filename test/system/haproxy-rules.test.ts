import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClusterOfReplicas, type ClusterOfReplicas } from '../support/cluster-of-replicas.js';
import type { RunningHaproxy } from '../support/haproxy.js';
import type { RunningServer } from '../support/server.js';
import { https, TlsLineClient, type TlsTarget } from '../support/tls-clients.js';

/*
 * The rules of SPEC section 2 across three replicas behind the real HAProxy
 * (deploy/haproxy.cfg, TLS) on one redis-server: an account locked by wrong
 * passwords that landed on three replicas, whoelse the same from every
 * replica, and an inactivity timeout announced once while every replica
 * sweeps (every 100 ms, timeout 4 s). Each test checks, by the replicas' own
 * counts, that its connections really landed on different replicas. And the
 * balancer keeps the replicas' metrics to itself.
 */
const TIMEOUT_S = 4;
let deploy: ClusterOfReplicas;
let replicas: RunningServer[] = [];
let lb: RunningHaproxy;
const open: TlsLineClient[] = [];

beforeAll(async () => {
  deploy = await startClusterOfReplicas({ positional: ['60', String(TIMEOUT_S)], args: ['--sweep-interval', '100'] });
  ({ replicas, lb } = deploy);
}, 60_000);

afterAll(async () => {
  for (const c of open) c.close();
  await deploy?.stop();
});

const tcp = (from?: string): TlsTarget => deploy.tcp(from);
const web = (from?: string): TlsTarget => deploy.web(from);

async function waitUntil(done: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The TCP connections each replica reports itself (on its metrics listener, not through the balancer). */
async function tcpConnections(): Promise<number[]> {
  return Promise.all(
    replicas.map(async (replica) => {
      const text = await (await fetch(`${replica.metrics}/metrics`)).text();
      return Number(/^im_tcp_connections (\d+)$/m.exec(text)?.[1] ?? NaN);
    }),
  );
}

/**
 * Three TLS connections through the balancer, one on each replica (round
 * robin; checked with the replicas' own counts, so the test cannot pass with
 * all three on one). Needs no other TCP connection open.
 */
async function onEachReplica(from?: string): Promise<TlsLineClient[]> {
  await waitUntil(async () => (await tcpConnections()).every((n) => n === 0), 'no TCP connection open');
  const clients: TlsLineClient[] = [];
  for (let k = 0; k < 3; k++) {
    const client = await TlsLineClient.open(tcp(from));
    open.push(client);
    clients.push(client);
  }
  await waitUntil(async () => (await tcpConnections()).every((n) => n === 1), 'one connection on each replica');
  return clients;
}

function closeAll(clients: TlsLineClient[]): void {
  for (const c of clients) c.close();
}

/** Requests each HTTP server of the balancer has taken so far (`stot` of `show stat`). */
async function httpRequestsPerReplica(): Promise<number[]> {
  const [header, ...rows] = (await lb.admin('show stat')).trim().split('\n');
  const names = header.slice(2).split(',');
  const cell = (row: string[], name: string) => row[names.indexOf(name)];
  return ['r1', 'r2', 'r3'].map((server) => {
    const row = rows.map((r) => r.split(',')).find((r) => cell(r, 'pxname') === 'im_http' && cell(r, 'svname') === server);
    return Number(row ? cell(row, 'stot') : NaN);
  });
}

describe('SPEC section 2 across three replicas behind HAProxy', () => {
  it('three wrong passwords, each on another replica, lock the account on every replica', async () => {
    const tries = await onEachReplica('127.0.0.6');
    const texts = [];
    for (const client of tries) texts.push((await client.command('login vader wrong')).text);
    expect(texts).toEqual([
      'Invalid Password. Please try again',
      'Invalid Password. Please try again',
      'Invalid Password. Your account has been blocked. Please try again later',
    ]);
    closeAll(tries);

    // The right password now, from another address, on each replica: blocked everywhere.
    const again = await onEachReplica('127.0.0.7');
    for (const client of again) {
      expect(await client.command('login vader sithlord')).toMatchObject({
        ok: false,
        error: 'account_blocked',
        text: 'Your account is blocked due to multiple login failures. Please try again later',
      });
    }
    closeAll(again);
    const overHttp = await https(web('127.0.0.7'), 'POST', '/login', { body: { username: 'vader', password: 'sithlord' } });
    expect([overHttp.status, overHttp.body.error]).toEqual([403, 'account_blocked']);
  });

  it('whoelse is answered the same by every replica', async () => {
    const [luke, hans, leia] = await onEachReplica();
    for (const [client, login] of [[luke, 'login luke sunrise'], [hans, 'login hans falcon'], [leia, 'login leia alderaan']] as const) {
      expect(await client.command(login)).toMatchObject({ ok: true });
    }
    // Each asks its own replica; each sees the two others, in login order.
    expect(await luke.command('whoelse')).toMatchObject({ ok: true, users: ['hans', 'leia'] });
    expect(await hans.command('whoelse')).toMatchObject({ ok: true, users: ['luke', 'leia'] });
    expect(await leia.command('whoelse')).toMatchObject({ ok: true, users: ['luke', 'hans'] });

    // One HTTPS user's whoelse, three times: round robin puts each on another replica.
    const login = await https(web(), 'POST', '/login', { body: { username: 'yoda', password: 'wise' } });
    expect(login.status).toBe(200);
    const token = String(login.body.token);
    const before = await httpRequestsPerReplica();
    const answers = [];
    for (let k = 0; k < 3; k++) answers.push(await https(web(), 'POST', '/command', { body: 'whoelse', token }));
    const after = await httpRequestsPerReplica();
    expect(after.map((n, k) => n - before[k])).toEqual([1, 1, 1]);
    for (const answer of answers) expect(answer.body).toMatchObject({ ok: true, users: ['luke', 'hans', 'leia'], text: 'luke\nhans\nleia' });

    expect((await https(web(), 'POST', '/command', { body: 'logout', token })).status).toBe(200);
    for (const client of [luke, hans, leia]) expect(await client.command('logout')).toMatchObject({ ok: true });
    closeAll([luke, hans, leia]);
  });

  it('an inactivity timeout is announced exactly once while all three replicas sweep', async () => {
    const observers = await onEachReplica();
    const names = ['obiwan', 'r2d2', 'c3po'];
    const passwords = ['kenobi', 'beepboop', 'protocol'];
    for (let k = 0; k < 3; k++) expect(await observers[k].command(`login ${names[k]} ${passwords[k]}`)).toMatchObject({ ok: true });
    // The observers stay active; the victims do nothing after logging in.
    let touching = true;
    const touches = (async () => {
      while (touching) {
        await Promise.all(observers.map((o) => o.command('touch')));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    try {
      const chewy = await TlsLineClient.open(tcp());
      open.push(chewy);
      expect(await chewy.command('login chewy wookie')).toMatchObject({ ok: true });
      const outs = (client: TlsLineClient, user: string) =>
        client.received.filter((m) => m.type === 'presence' && m.text === `${user} logged out`).length;
      await waitUntil(() => observers.every((o) => outs(o, 'chewy') >= 1), "chewy's timeout on every observer", 30_000);

      // A second idle user, logged in after that, times out TIMEOUT_S later:
      // every replica has swept dozens of times in between, and the lobby is
      // in order, so a second announcement of chewy's timeout would have
      // reached the observers before lando's.
      const lando = await TlsLineClient.open(tcp());
      open.push(lando);
      expect(await lando.command('login lando cloudcity')).toMatchObject({ ok: true });
      await waitUntil(() => observers.every((o) => outs(o, 'lando') >= 1), "lando's timeout on every observer", 30_000);

      for (const o of observers) {
        expect(outs(o, 'chewy')).toBe(1);
        expect(outs(o, 'lando')).toBe(1);
      }
      for (const victim of [chewy, lando]) {
        await waitUntil(() => victim.closed, 'the timed-out connection to close');
        const ends = victim.received.filter((m) => m.type === 'session_end');
        expect(ends).toEqual([expect.objectContaining({ reason: 'timeout', text: 'You have been logged out due to inactivity' })]);
      }
    } finally {
      touching = false;
      await touches;
    }
    for (const o of observers) expect(await o.command('logout')).toMatchObject({ ok: true });
    closeAll(observers);
  });
});

describe('what the balancer does not pass on', () => {
  it('/metrics: answered "unknown route" by HAProxy itself, never forwarded to a replica', async () => {
    const before = await httpRequestsPerReplica();
    for (const path of ['/metrics', '/metrics/', '/metrics?name[]=im_login_failures_total']) {
      const answer = await https(web(), 'GET', path);
      expect(answer.status, path).toBe(404);
      expect(answer.body, path).toEqual({ ok: false, error: 'not_found', text: 'Error. Unknown route' });
    }
    expect(await httpRequestsPerReplica()).toEqual(before);

    // The count above would have seen a forwarded request: another unknown route reaches a replica.
    const unknown = await https(web(), 'GET', '/nowhere');
    expect([unknown.status, unknown.body.error]).toEqual([404, 'not_found']);
    const after = await httpRequestsPerReplica();
    expect(after.reduce((sum, n, k) => sum + n - before[k], 0)).toBe(1);

    // The replicas' own metrics listeners still answer their scraper.
    for (const replica of replicas) expect((await fetch(`${replica.metrics}/metrics`)).status).toBe(200);
  });
});
