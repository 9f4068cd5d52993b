import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startServer, type RunningServer } from '../support/server.js';
import { runUsersTool } from '../support/users-tool.js';

let redis: RedisServer;
let server: RunningServer;

function users(...args: string[]): Promise<{ code: number | null; out: string }> {
  return usersWith({ REDIS_URL: redis.url }, args);
}

function usersWith(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number | null; out: string }> {
  return runUsersTool(env, args);
}

async function httpLogin(username: string, password: string): Promise<number> {
  const res = await fetch(`${server.http}/login`, { method: 'POST', body: new URLSearchParams({ username, password }) });
  return res.status;
}

beforeAll(async () => {
  redis = await startRedis();
  server = await startServer({ env: { REDIS_URL: redis.url } });
});

afterAll(async () => {
  await server?.stop();
  await redis?.stop();
});

// Each test starts the tool six or seven times, one after another: a
// deadline for that many program starts, not for one command.
describe('npm run users (management command)', { timeout: 120_000 }, () => {
  it('adds, resets and removes users while the server runs', async () => {
    expect((await users('list')).out.split('\n')).toContain('yoda');
    expect(await users('add', 'newbie', 'first')).toEqual({ code: 0, out: 'newbie added\n' });
    expect((await users('add', 'newbie', 'again')).code).toBe(1);
    expect(await httpLogin('newbie', 'first')).toBe(200);
    await fetch(`${server.http}/logout`, { method: 'POST' });
    expect(await users('reset', 'newbie', 'second')).toEqual({ code: 0, out: "newbie's password reset\n" });
    expect(await users('remove', 'newbie')).toEqual({ code: 0, out: 'newbie removed\n' });
    expect(await httpLogin('newbie', 'second')).toBe(401);
    expect((await users('remove', 'newbie')).code).toBe(1);
  });

  it('refuses invalid usernames and wrong usage with exit 2', async () => {
    expect((await users('add', 'bad name!', 'x')).code).toBe(2);
    expect((await users('frobnicate')).code).toBe(2);
    const unknown = await users('list', '--verbose');
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain('Usage: npm run users');
  });

  it('takes --redis anywhere on the line, and a password that starts with "-" after --', async () => {
    const none = await usersWith({}, ['list']);
    expect(none.code).toBe(2);
    expect(none.out).toContain('error: no store given (REDIS_URL or --redis)');
    expect(await usersWith({}, ['add', '--redis', redis.url, 'flagged', 'first'])).toEqual({ code: 0, out: 'flagged added\n' });
    expect(await usersWith({}, ['reset', 'flagged', `--redis=${redis.url}`, '--', '-dash'])).toEqual({ code: 0, out: "flagged's password reset\n" });
    expect(await httpLogin('flagged', '-dash')).toBe(200);
    expect((await usersWith({ REDIS_URL: 'redis://127.0.0.1:1' }, ['list', '--redis', redis.url])).out.split('\n')).toContain('flagged');
  });
});

describe('a password not on the command line', () => {
  const usersFromStdin = (input: string, ...args: string[]) => runUsersTool({ REDIS_URL: redis.url }, args, input);

  it('add and reset read it from the first line of standard input, so ps and the shell history never show it', async () => {
    expect(await usersFromStdin('first secret\nignored\n', 'add', 'piper')).toMatchObject({ code: 0, out: 'piper added\n' });
    expect(await httpLogin('piper', 'first secret')).toBe(200);
    // The reset also ends the session that login opened.
    expect(await usersFromStdin('second-secret\n', 'reset', 'piper')).toMatchObject({ code: 0, out: "piper's password reset\n" });
    expect(await httpLogin('piper', 'first secret')).toBe(401);
    expect(await httpLogin('piper', 'second-secret')).toBe(200);
  });

  it('refuses an empty one', async () => {
    const run = await usersFromStdin('', 'add', 'nobody');
    expect(run.code).toBe(2);
    expect(run.out).toContain('no password given');
  });
});
