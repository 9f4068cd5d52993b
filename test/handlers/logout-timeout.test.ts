import { describe, expect, it } from 'vitest';
import { sweepIdleSessions } from '../../handlers/sweep.js';
import { Server } from './harness.js';

describe('logout', () => {
  it('ends the session: the token no longer works', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'logout')).toMatchObject({ type: 'reply', cmd: 'logout', ok: true });
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: false, error: 'not_logged_in' });
    expect(await server.run(yoda.caller, 'logout')).toMatchObject({ ok: false, error: 'not_logged_in' });
  });

  it('session_end with reason logout is the last event the session gets', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.run(yoda.caller, 'logout');
    const events = await server.events('yoda', String(yoda.reply.cursor));
    expect(events.at(-1)).toMatchObject({ type: 'session_end', reason: 'logout' });
  });

  it('others see <user> logged out', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    await server.login('hans');
    const marks = { luke: await server.mark('luke'), hans: await server.mark('hans') };
    await server.run(yoda.caller, 'logout');
    for (const user of ['luke', 'hans'] as const) {
      expect(await server.events(user, marks[user])).toMatchObject([
        { type: 'presence', user: 'yoda', state: 'out', reason: 'logout', text: 'yoda logged out' },
      ]);
    }
  });

  it('except the users that <user> has blocked', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    await server.login('hans');
    await server.run(yoda.caller, 'block luke');
    const marks = { luke: await server.mark('luke'), hans: await server.mark('hans') };
    await server.run(yoda.caller, 'logout');
    expect(await server.texts('luke', marks.luke)).toEqual([]);
    expect(await server.texts('hans', marks.hans)).toEqual(['yoda logged out']);
  });

  it('a user who blocked <user> still sees <user> logged out (blocks are directional)', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const mark = await server.mark('luke');
    await server.run(yoda.caller, 'logout');
    expect(await server.texts('luke', mark)).toEqual(['yoda logged out']);
  });

  it('the user leaves whoelse', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(yoda.caller, 'logout');
    expect(await server.run(luke.caller, 'whoelse')).toMatchObject({ ok: true, users: [], text: '' });
  });

  it('usage: logout takes no arguments', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'logout now')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: logout' });
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
  });
});

describe('inactivity timeout', () => {
  it('a session that issues no valid command for timeout seconds is logged out by the server', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(119);
    expect(await sweepIdleSessions(server.ctx)).toEqual([]);
    server.clock.advance(1);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: false, error: 'not_logged_in' });
  });

  it('a timed-out user\'s client is told: session_end with reason timeout', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(120);
    await sweepIdleSessions(server.ctx);
    const events = await server.events('yoda', String(yoda.reply.cursor));
    expect(events.filter((e) => e.type === 'session_end')).toMatchObject([{ type: 'session_end', reason: 'timeout' }]);
    expect(events.at(-1)).toMatchObject({ type: 'session_end', reason: 'timeout' });
  });

  it('others see <user> logged out', async () => {
    const server = await Server.start({ timeout: 120 });
    await server.login('yoda');
    server.clock.advance(60);
    const luke = await server.login('luke');
    const mark = await server.mark('luke');
    server.clock.advance(60);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);
    expect(await server.events('luke', mark)).toMatchObject([
      { type: 'presence', user: 'yoda', state: 'out', reason: 'timeout', text: 'yoda logged out' },
    ]);
    expect(await server.run(luke.caller, 'whoelse')).toMatchObject({ ok: true, users: [] });
  });

  it('except the users that <user> has blocked', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    await server.run(yoda.caller, 'block luke');
    server.clock.advance(60);
    await server.login('luke');
    await server.login('hans');
    const marks = { luke: await server.mark('luke'), hans: await server.mark('hans') };
    server.clock.advance(60);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);
    expect(await server.texts('luke', marks.luke)).toEqual([]);
    expect(await server.texts('hans', marks.hans)).toEqual(['yoda logged out']);
  });

  it('ends the session once and announces once when two sweeps run one after the other', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(60);
    await server.login('luke');
    const mark = await server.mark('luke');
    server.clock.advance(60);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);
    expect(await sweepIdleSessions(server.ctx)).toEqual([]);
    expect(await server.texts('luke', mark)).toEqual(['yoda logged out']);
    const ends = (await server.events('yoda', String(yoda.reply.cursor))).filter((e) => e.type === 'session_end');
    expect(ends).toHaveLength(1);
  });

  it('ends the session once and announces once when two sweeps run concurrently (two replicas)', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(60);
    await server.login('luke');
    const mark = await server.mark('luke');
    server.clock.advance(60);
    const other = server.replica();
    const [a, b, c] = await Promise.all([
      sweepIdleSessions(server.ctx),
      sweepIdleSessions(other.ctx),
      sweepIdleSessions(server.ctx),
    ]);
    expect([...a, ...b, ...c]).toEqual(['yoda']);
    expect(await server.texts('luke', mark)).toEqual(['yoda logged out']);
    const ends = (await server.events('yoda', String(yoda.reply.cursor))).filter((e) => e.type === 'session_end');
    expect(ends).toHaveLength(1);
  });

  it('a logout racing a sweep ends the session once, announced once', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(60);
    await server.login('luke');
    const mark = await server.mark('luke');
    server.clock.advance(60);
    await Promise.all([server.run(yoda.caller, 'logout'), sweepIdleSessions(server.ctx)]);
    expect(await server.texts('luke', mark)).toEqual(['yoda logged out']);
    const ends = (await server.events('yoda', String(yoda.reply.cursor))).filter((e) => e.type === 'session_end');
    expect(ends).toHaveLength(1);
  });

  it('a valid command resets the timer', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(100);
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
    server.clock.advance(20);
    expect(await sweepIdleSessions(server.ctx)).toEqual([]);
    server.clock.advance(99);
    expect(await sweepIdleSessions(server.ctx)).toEqual([]);
    server.clock.advance(1);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);
  });

  it('a command that fails for a reason of its own (message to an unknown user) still counts as activity', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(100);
    expect(await server.run(yoda.caller, 'message vader hello')).toMatchObject({ ok: false, error: 'invalid_user' });
    server.clock.advance(20);
    expect(await sweepIdleSessions(server.ctx)).toEqual([]);
  });

  it('invalid commands do not count as activity', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(100);
    expect(await server.run(yoda.caller, 'dance')).toMatchObject({ ok: false, error: 'invalid_command' });
    expect(await server.run(yoda.caller, 'message luke')).toMatchObject({ ok: false, error: 'usage' });
    expect(await server.run(yoda.caller, 'whoelsesince soon')).toMatchObject({ ok: false, error: 'usage' });
    server.clock.advance(20);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);
  });

  it('receiving messages and long-polling do not count as activity', async () => {
    const server = await Server.start({ timeout: 120 });
    const luke = await server.login('luke');
    server.clock.advance(60);
    const yoda = await server.login('yoda');
    server.clock.advance(30);
    await server.run(yoda.caller, 'message luke are you there');
    await server.run(yoda.caller, 'broadcast anyone');
    const poll = await server.ctx.state.poll('luke', luke.caller.session!.token, null, 100);
    expect(poll).toMatchObject({ ok: true });
    server.clock.advance(30);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['luke']);
  });

  it('private and stopprivate reaching the server do not count; the CLI says touch, which does', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(100);
    await server.run(yoda.caller, 'private luke hi');
    await server.run(yoda.caller, 'stopprivate luke');
    server.clock.advance(20);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);

    const again = await server.login('yoda');
    server.clock.advance(100);
    expect(await server.run(again.caller, 'touch')).toMatchObject({ ok: true });
    server.clock.advance(20);
    expect(await sweepIdleSessions(server.ctx)).toEqual([]);
  });

  it('a timed-out user can log in again', async () => {
    const server = await Server.start({ timeout: 120 });
    await server.login('yoda');
    server.clock.advance(120);
    await sweepIdleSessions(server.ctx);
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true, text: 'Welcome to the greatest messaging application ever!' });
  });

  it('only idle sessions are ended', async () => {
    const server = await Server.start({ timeout: 120 });
    await server.login('yoda');
    const luke = await server.login('luke');
    server.clock.advance(119);
    await server.run(luke.caller, 'whoelse');
    server.clock.advance(1);
    expect(await sweepIdleSessions(server.ctx)).toEqual(['yoda']);
    expect(await server.run(luke.caller, 'whoelse')).toMatchObject({ ok: true, users: [] });
  });
});
