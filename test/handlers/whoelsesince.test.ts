import { describe, expect, it } from 'vitest';
import { sweepSessions } from '../../handlers/sweep.js';
import { Server } from './harness.js';

describe('whoelsesince <seconds>', () => {
  it('includes users online now', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    server.clock.advance(3600);
    expect(await server.run(yoda.caller, 'whoelsesince 10')).toEqual({
      type: 'reply',
      cmd: 'whoelsesince',
      ok: true,
      text: 'luke',
      users: ['luke'],
    });
  });

  it('includes users whose last session ended within the window, not those that ended before it', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    const hans = await server.login('hans');
    await server.run(hans.caller, 'logout');
    server.clock.advance(100);
    await server.run(luke.caller, 'logout');
    server.clock.advance(30);
    // luke ended 30 s ago, hans 130 s ago.
    expect(await server.run(yoda.caller, 'whoelsesince 29')).toMatchObject({ ok: true, text: '', users: [] });
    expect(await server.run(yoda.caller, 'whoelsesince 31')).toMatchObject({ ok: true, text: 'luke', users: ['luke'] });
    expect(await server.run(yoda.caller, 'whoelsesince 129')).toMatchObject({ ok: true, users: ['luke'] });
    const wide = await server.run(yoda.caller, 'whoelsesince 131');
    expect([...(wide.users as string[])].sort()).toEqual(['hans', 'luke']);
    expect(wide.text).toBe((wide.users as string[]).join('\n'));
  });

  it('includes users whose session ended by timeout within the window', async () => {
    const server = await Server.start({ timeout: 120 });
    await server.login('luke');
    server.clock.advance(60);
    const yoda = await server.login('yoda');
    server.clock.advance(60);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['luke']);
    server.clock.advance(10);
    expect(await server.run(yoda.caller, 'whoelsesince 11')).toMatchObject({ users: ['luke'] });
    expect(await server.run(yoda.caller, 'whoelsesince 9')).toMatchObject({ users: [] });
  });

  it('users who never logged in are not listed', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'whoelsesince 100000')).toMatchObject({ ok: true, text: '', users: [] });
  });

  it('the caller is not listed, even after an earlier session of their own', async () => {
    const server = await Server.start();
    const first = await server.login('yoda');
    await server.run(first.caller, 'logout');
    server.clock.advance(5);
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'whoelsesince 60')).toMatchObject({ ok: true, users: [] });
  });

  it('a user who logged out and in again is listed once', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'logout');
    server.clock.advance(5);
    await server.login('luke');
    expect(await server.run(yoda.caller, 'whoelsesince 60')).toMatchObject({ ok: true, text: 'luke', users: ['luke'] });
  });

  it('users who blocked the caller are left out', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    const hans = await server.login('hans');
    await server.run(luke.caller, 'block yoda');
    await server.run(hans.caller, 'block yoda');
    await server.run(hans.caller, 'logout');
    await server.login('leia');
    server.clock.advance(10);
    expect(await server.run(yoda.caller, 'whoelsesince 60')).toMatchObject({ ok: true, text: 'leia', users: ['leia'] });
  });

  it('0 seconds: only users online now', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.login('hans');
    await server.run(luke.caller, 'logout');
    server.clock.advance(1);
    expect(await server.run(yoda.caller, 'whoelsesince 0')).toMatchObject({ ok: true, text: 'hans', users: ['hans'] });
  });

  it('history survives server restarts (another replica on the same state store)', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    await server.run(luke.caller, 'logout');
    server.clock.advance(20);
    const restarted = server.replica();
    const yoda = await restarted.login('yoda');
    expect(await restarted.run(yoda.caller, 'whoelsesince 30')).toMatchObject({ ok: true, users: ['luke'] });
  });

  it('<seconds> is a non-negative integer: Usage: whoelsesince <seconds>', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const line of ['whoelsesince', 'whoelsesince -5', 'whoelsesince 1.5', 'whoelsesince ten', 'whoelsesince 10 20', 'whoelsesince  10']) {
      expect(await server.run(yoda.caller, line), line).toMatchObject({
        ok: false,
        error: 'usage',
        text: 'Usage: whoelsesince <seconds>',
      });
    }
  });

  it('a very large window is accepted', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'logout');
    expect(await server.run(yoda.caller, 'whoelsesince 999999999999')).toMatchObject({ ok: true, users: ['luke'] });
  });
});
