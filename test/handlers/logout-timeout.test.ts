import { describe, expect, it } from 'vitest';
import { sweepSessions } from '../../handlers/sweep.js';
import { Server, type Client } from './harness.js';

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
    expect((await sweepSessions(server.ctx)).timedOut).toEqual([]);
    server.clock.advance(1);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: false, error: 'not_logged_in' });
  });

  it('a timed-out user\'s client is told: session_end with reason timeout', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(120);
    await sweepSessions(server.ctx);
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
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);
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
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);
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
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual([]);
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
      sweepSessions(server.ctx),
      sweepSessions(other.ctx),
      sweepSessions(server.ctx),
    ]);
    expect([...a.timedOut, ...b.timedOut, ...c.timedOut]).toEqual(['yoda']);
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
    await Promise.all([server.run(yoda.caller, 'logout'), sweepSessions(server.ctx)]);
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
    expect((await sweepSessions(server.ctx)).timedOut).toEqual([]);
    server.clock.advance(99);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual([]);
    server.clock.advance(1);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);
  });

  it('a command that fails for a reason of its own (message to an unknown user) still counts as activity', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(100);
    expect(await server.run(yoda.caller, 'message vader hello')).toMatchObject({ ok: false, error: 'invalid_user' });
    server.clock.advance(20);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual([]);
  });

  it('invalid commands do not count as activity', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(100);
    expect(await server.run(yoda.caller, 'dance')).toMatchObject({ ok: false, error: 'invalid_command' });
    expect(await server.run(yoda.caller, 'message luke')).toMatchObject({ ok: false, error: 'usage' });
    expect(await server.run(yoda.caller, 'whoelsesince soon')).toMatchObject({ ok: false, error: 'usage' });
    server.clock.advance(20);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);
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
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['luke']);
  });

  it('private and stopprivate reaching the server do not count; the CLI says touch, which does', async () => {
    const server = await Server.start({ timeout: 120 });
    const yoda = await server.login('yoda');
    server.clock.advance(100);
    await server.run(yoda.caller, 'private luke hi');
    await server.run(yoda.caller, 'stopprivate luke');
    server.clock.advance(20);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);

    const again = await server.login('yoda');
    server.clock.advance(100);
    expect(await server.run(again.caller, 'touch')).toMatchObject({ ok: true });
    server.clock.advance(20);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual([]);
  });

  it('a timed-out user can log in again', async () => {
    const server = await Server.start({ timeout: 120 });
    await server.login('yoda');
    server.clock.advance(120);
    await sweepSessions(server.ctx);
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true, text: 'Welcome to the greatest messaging application ever!' });
  });

  it('only idle sessions are ended', async () => {
    const server = await Server.start({ timeout: 120 });
    await server.login('yoda');
    const luke = await server.login('luke');
    server.clock.advance(119);
    await server.run(luke.caller, 'whoelse');
    server.clock.advance(1);
    expect((await sweepSessions(server.ctx)).timedOut).toEqual(['yoda']);
    expect(await server.run(luke.caller, 'whoelse')).toMatchObject({ ok: true, users: [] });
  });
});

describe('absolute session lifetime (--session-lifetime)', () => {
  const expiredText = 'Your session has expired. Please log in again';

  /** Keeps `client` active every `step` seconds until `total` seconds have passed. */
  async function keepActive(server: Server, clients: Client[], step: number, total: number): Promise<void> {
    for (let passed = 0; passed < total; passed += step) {
      server.clock.advance(step);
      for (const c of clients) expect(await server.run(c.caller, 'touch')).toMatchObject({ ok: true });
    }
  }

  it('ends a session that stays active once it is older than the lifetime, with its reason, and refuses its token', async () => {
    const server = await Server.start({ timeout: 120, sessionLifetime: 3600 });
    const yoda = await server.login('yoda');
    await keepActive(server, [yoda], 100, 1800);
    const luke = await server.login('luke');
    const mark = await server.mark('luke');
    await keepActive(server, [yoda, luke], 100, 1700);
    expect(await sweepSessions(server.ctx)).toEqual({ timedOut: [], expired: [] });
    await keepActive(server, [yoda, luke], 100, 100);
    // yoda's session is an hour old now; luke's half an hour.
    expect(await sweepSessions(server.ctx)).toEqual({ timedOut: [], expired: ['yoda'] });
    expect(await server.run(luke.caller, 'whoelse')).toMatchObject({ ok: true });
    const [end] = (await server.events('yoda', String(yoda.reply.cursor))).filter((e) => e.type === 'session_end');
    expect(end).toMatchObject({ reason: 'expired', text: expiredText });
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: false, error: 'not_logged_in' });
    expect(await server.texts('luke', mark)).toContain('yoda logged out');
    // Logging in again starts a new lifetime.
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true });
    expect(await sweepSessions(server.ctx)).toEqual({ timedOut: [], expired: [] });
  });

  it('a new session is not ended for the lifetime of the one before it', async () => {
    const server = await Server.start({ timeout: 100_000, sessionLifetime: 3600 });
    const first = await server.login('yoda');
    server.clock.advance(3000);
    await server.run(first.caller, 'logout');
    const second = await server.login('yoda');
    server.clock.advance(700);
    expect((await sweepSessions(server.ctx)).expired).toEqual([]);
    expect(await server.run(second.caller, 'whoelse')).toMatchObject({ ok: true });
    server.clock.advance(2900);
    expect((await sweepSessions(server.ctx)).expired).toEqual(['yoda']);
  });

  it('0 means no lifetime', async () => {
    const server = await Server.start({ timeout: 2000, sessionLifetime: 0 });
    const yoda = await server.login('yoda');
    await keepActive(server, [yoda], 1000, 48 * 3600);
    expect(await sweepSessions(server.ctx)).toEqual({ timedOut: [], expired: [] });
  });
});
