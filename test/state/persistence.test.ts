import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openState } from '../../state/connect.js';
import { Cursor } from '../../state/cursor.js';
import type { NewEvent, State } from '../../state/index.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { fingerprint } from '../support/fingerprints.js';

/**
 * State kept in a real Redis outlives the server process (a restart with
 * persistence on), and the test helper that runs those servers leaves none
 * behind.
 */

const T0 = Date.UTC(2026, 0, 1);
const WAIT = { timeout: 10_000, interval: 50 };
const FP = fingerprint(1);

/** An event as the handlers would store it: its kind and time beside its JSON. */
function event(kind: string, at: number, fields: Record<string, unknown>): NewEvent {
  return { kind, at, json: JSON.stringify({ type: kind, ...fields, at }) };
}

/** Whether a process is running (a zombie waiting to be reaped is not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('state on a persistent redis-server', () => {
  let dir: string;
  let server: RedisServer;
  const states: State[] = [];

  function open(): State {
    const state = openState(server.url).state;
    states.push(state);
    return state;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'im-persist-'));
    server = await startRedis({ dir });
  });

  afterAll(async () => {
    for (const s of states) await s.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps users, sessions and their cursors, inboxes, the lobby, blocks both ways and presence across a server restart', async () => {
    const presence0 = event('presence', T0 - 5, { n: 0 });
    const signal1 = event('private_request', T0 + 1, { n: 1 });
    const message2 = event('message', T0 + 2, { n: 2 });
    const broadcast3 = event('broadcast', T0 + 3, { n: 3 });
    const before = open();
    expect(await before.addUser('alice', 'hash-a')).toBe(true);
    expect(await before.addUser('bob', 'hash-b')).toBe(true);
    expect(await before.appendLobby(['carol'], presence0, 100)).toBe(1);
    expect(await before.openSession('alice', 'alice:t', T0, '127.0.0.1', 1)).toEqual({ ok: true, cursor: { inbox: 0, lobby: 1 }, gap: false });
    expect(await before.deliver('alice', { from: 'bob', event: signal1, storable: false }, 100)).toEqual({ ok: true, id: 1, online: true });
    expect(await before.deliver('bob', { from: 'alice', event: message2, storable: true }, 100)).toEqual({
      ok: true,
      id: 1,
      online: false,
    });
    expect(await before.appendLobby(['alice', 'bob'], broadcast3, 100)).toBe(2);
    expect(await before.block('bob', 'carol')).toBe(true);
    await before.saveCursor('alice', 'alice:t', new Cursor(1, 2));
    await before.setPeerListener('alice', 'alice:t', { host: '192.0.2.7', port: 4567, fingerprint: FP });
    await before.markOnline('alice', T0);
    await before.markOffline('bob', T0 - 1000);
    await before.close();

    const pid = server.pid();
    await server.restart();
    expect(server.pid()).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(true);

    const after = open();
    expect(await after.listUsers()).toEqual(['alice', 'bob']);
    expect(await after.loginRecord('alice')).toEqual({ hash: 'hash-a', lockedUntil: 0 });
    expect(await after.sessionCursor('alice', 'alice:t')).toEqual({ ended: false, cursor: { inbox: 1, lobby: 2 } });
    expect(await after.admitCommand('alice', 'alice:t', T0 + 1, { activity: false, rate: 0, burst: 0 })).toEqual({ ok: true });
    expect(await after.peerListener('alice')).toEqual({ host: '192.0.2.7', port: 4567, fingerprint: FP });
    const alicePage = await after.read('alice', 0, 10);
    expect(alicePage.events).toEqual([{ id: 1, kind: 'private_request', at: T0 + 1, skip: [], json: signal1.json }]);
    expect(alicePage.last).toBe(1);
    const bobPage = await after.read('bob', 0, 10);
    expect(bobPage.events).toEqual([{ id: 1, kind: 'message', at: T0 + 2, skip: [], json: `${message2.json.slice(0, -1)},"offline":true}` }]);
    expect(await after.blocked('bob')).toEqual(['carol']);
    expect(await after.blockedBy('carol')).toEqual(['bob']);
    expect(await after.lobbyHead()).toBe(2);
    expect((await after.readLobby(0, 10)).events).toEqual([
      { id: 1, kind: 'presence', at: T0 - 5, skip: ['carol'], json: presence0.json },
      { id: 2, kind: 'broadcast', at: T0 + 3, skip: ['alice', 'bob'], json: broadcast3.json },
    ]);
    expect(await after.online()).toEqual(['alice']);
    expect(await after.endedSince(T0 - 1000)).toEqual(['bob']);
    // Sequences go on where they stopped.
    expect(await after.deliver('alice', { from: '', event: event('private_request', T0 + 4, { n: 4 }), storable: false }, 100)).toEqual({
      ok: true,
      id: 2,
      online: true,
    });
    expect(await after.appendLobby(['bob'], event('presence', T0 + 5, { n: 5 }), 100)).toBe(3);
  });
});

describe('test redis-server helper', () => {
  it('stop() ends the server process by its PID and removes its temp dir', async () => {
    const server = await startRedis();
    const pid = server.pid();
    expect(alive(pid)).toBe(true);
    expect(existsSync(server.dir)).toBe(true);
    const state = openState(server.url).state;
    expect(await state.ping()).toBe(true);
    await state.close();
    await server.stop();
    expect(alive(pid)).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
    await server.stop(); // a second stop is harmless
  });

  it('a test process that dies without cleaning up takes its redis-server with it', async () => {
    const helper = fileURLToPath(new URL('../support/redis-server.ts', import.meta.url));
    // A child process starts a server, reports its PID, then is killed outright (no exit hooks run).
    const script = `
      const { startRedis } = await import(${JSON.stringify(helper)});
      const server = await startRedis();
      process.stdout.write('DIR ' + server.dir + '\\nPID ' + server.pid() + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let dir = '';
    let redisPid = 0;
    try {
      await vi.waitFor(() => expect(out).toMatch(/PID \d+\n/), { timeout: 20_000, interval: 50 });
      redisPid = Number(/PID (\d+)/.exec(out)![1]);
      dir = /DIR (.+)\n/.exec(out)![1];
      expect(alive(redisPid)).toBe(true);
      process.kill(child.pid!, 'SIGKILL');
      await exited;
      await vi.waitFor(() => expect(alive(redisPid)).toBe(false), WAIT);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      // Should the server have outlived its parent, stop it here (by PID) so the failure leaves nothing behind.
      if (redisPid > 0 && alive(redisPid)) process.kill(redisPid, 'SIGKILL');
      if (dir.startsWith(tmpdir())) rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
