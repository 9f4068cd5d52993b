import { describe, expect, it } from 'vitest';
import { Server } from './harness.js';

const welcome = 'Welcome to the greatest messaging application ever!';
const invalidPassword = 'Invalid Password. Please try again';
const passwordLocked = 'Invalid Password. Your account has been blocked. Please try again later';
const accountBlocked = 'Your account is blocked due to multiple login failures. Please try again later';
const invalidUsername = 'Invalid Username. Please try again';
const alreadyLoggedIn = 'This user is already logged in';

describe('login <user> <password>', () => {
  it('success: Welcome to the greatest messaging application ever!, a session token and a cursor', async () => {
    const server = await Server.start();
    const reply = await server.attempt('yoda', 'wise');
    expect(reply).toMatchObject({ type: 'reply', cmd: 'login', ok: true, text: welcome, user: 'yoda', cursor: expect.any(String) });
    // The cursor is opaque; what it promises is that the session reads from it.
    expect(await server.events('yoda', String(reply.cursor))).toEqual([]);
    expect(reply.token).toEqual(expect.any(String));
    expect(String(reply.token).length).toBeGreaterThan(16);
    expect(reply).not.toHaveProperty('gap');
  });

  it('the session token works for commands', async () => {
    const server = await Server.start();
    const reply = await server.attempt('yoda', 'wise');
    const caller = { address: '10.0.0.1', session: { user: 'yoda', token: String(reply.token) } };
    expect(await server.run(caller, 'whoelse')).toMatchObject({ ok: true, cmd: 'whoelse' });
  });

  it('each login gets a different token, and the old one stops working after logout', async () => {
    const server = await Server.start();
    const first = await server.login('yoda');
    await server.run(first.caller, 'logout');
    const second = await server.login('yoda');
    expect(second.reply.token).not.toBe(first.reply.token);
    expect(await server.run(first.caller, 'whoelse')).toMatchObject({ ok: false, error: 'not_logged_in' });
    expect(await server.run(second.caller, 'whoelse')).toMatchObject({ ok: true });
  });

  it('then any stored offline messages, oldest first, with offline: true', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const hans = await server.login('hans');
    expect(await server.run(yoda.caller, 'message luke Hey Dude')).toMatchObject({ ok: true, text: '' });
    server.clock.advance(1);
    expect(await server.run(hans.caller, 'message luke Where is the falcon')).toMatchObject({ ok: true, text: '' });
    server.clock.advance(1);
    expect(await server.run(yoda.caller, 'message luke Use the force')).toMatchObject({ ok: true, text: '' });

    const luke = await server.login('luke');
    const events = await server.events('luke', String(luke.reply.cursor));
    expect(events.map((e) => [e.type, e.from, e.offline, e.text])).toEqual([
      ['message', 'yoda', true, 'yoda: Hey Dude'],
      ['message', 'hans', true, 'hans: Where is the falcon'],
      ['message', 'yoda', true, 'yoda: Use the force'],
    ]);
    expect(events[0].at).toBeLessThan(events[1].at);
    expect(events[1].at).toBeLessThan(events[2].at);
  });

  it('the cursor of a later login is the position before the messages stored since the last logout', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(yoda.caller, 'message luke seen while online');
    await server.run(luke.caller, 'logout');
    await server.run(yoda.caller, 'message luke stored while away');

    const again = await server.login('luke');
    const events = await server.events('luke', String(again.reply.cursor));
    expect(events.map((e) => [e.type, e.text, e.offline])).toEqual([['message', 'yoda: stored while away', true]]);
  });

  it('messages delivered while the user is online are not marked offline', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    await server.run(yoda.caller, 'message luke Hey Dude');
    expect(await server.events('luke', mark)).toMatchObject([
      { type: 'message', from: 'yoda', offline: false, text: 'yoda: Hey Dude' },
    ]);
  });

  it('wrong password: Invalid Password. Please try again', async () => {
    const server = await Server.start();
    expect(await server.attempt('yoda', 'foolish')).toEqual({
      type: 'reply',
      cmd: 'login',
      ok: false,
      error: 'invalid_password',
      text: invalidPassword,
    });
    expect(await server.attempt('yoda', 'WISE')).toMatchObject({ error: 'invalid_password', text: invalidPassword });
  });

  it('third consecutive wrong password: Invalid Password. Your account has been blocked. Please try again later', async () => {
    const server = await Server.start();
    expect(await server.attempt('yoda', 'one')).toMatchObject({ error: 'invalid_password', text: invalidPassword });
    expect(await server.attempt('yoda', 'two')).not.toHaveProperty('locked');
    // The reply that locks says so as a field too, for what acts on it (a metric).
    expect(await server.attempt('yoda', 'three')).toMatchObject({
      ok: false,
      error: 'invalid_password',
      text: passwordLocked,
      locked: 'account',
    });
  });

  it('a blocked account is refused even with the right password: Your account is blocked due to multiple login failures', async () => {
    const server = await Server.start();
    for (const guess of ['one', 'two', 'three']) await server.attempt('yoda', guess);
    expect(await server.attempt('yoda', 'wise')).toEqual({
      type: 'reply',
      cmd: 'login',
      ok: false,
      error: 'account_blocked',
      text: accountBlocked,
    });
    expect(await server.attempt('yoda', 'four')).toMatchObject({ error: 'account_blocked', text: accountBlocked });
  });

  it('the account is refused from another address too', async () => {
    const server = await Server.start();
    for (const guess of ['one', 'two', 'three']) await server.attempt('yoda', guess, '10.0.0.1');
    expect(await server.attempt('yoda', 'wise', '192.168.7.7')).toMatchObject({ error: 'account_blocked', text: accountBlocked });
  });

  it('the account is refused through any replica', async () => {
    const server = await Server.start();
    for (const guess of ['one', 'two', 'three']) await server.attempt('yoda', guess);
    const other = server.replica();
    expect(await other.attempt('yoda', 'wise', '192.168.7.7')).toMatchObject({ error: 'account_blocked', text: accountBlocked });
  });

  it('wrong passwords from different addresses count together: the third blocks the account', async () => {
    const server = await Server.start();
    expect(await server.attempt('yoda', 'one', '10.0.0.21')).toMatchObject({ text: invalidPassword });
    expect(await server.attempt('yoda', 'two', '10.0.0.22')).toMatchObject({ text: invalidPassword });
    expect(await server.attempt('yoda', 'three', '10.0.0.23')).toMatchObject({ error: 'invalid_password', text: passwordLocked });
    expect(await server.attempt('yoda', 'wise', '10.0.0.24')).toMatchObject({ error: 'account_blocked', text: accountBlocked });
  });

  it('three wrong passwords sent together through replicas sharing one mock store block the account', async () => {
    // The mock runs one script at a time in this process, so nothing here races:
    // login-race.test.ts races the count on a real Redis.
    const server = await Server.start();
    const replies = await Promise.all([
      server.attempt('yoda', 'one', '10.0.0.21'),
      server.replica().attempt('yoda', 'two', '10.0.0.22'),
      server.replica().attempt('yoda', 'three', '10.0.0.23'),
    ]);
    expect(replies.map((r) => r.text).sort()).toEqual([invalidPassword, invalidPassword, passwordLocked]);
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ error: 'account_blocked', text: accountBlocked });
  });

  it('the account is refused for block_duration seconds, then accepted again', async () => {
    const server = await Server.start({ blockDuration: 60 });
    for (const guess of ['one', 'two', 'three']) await server.attempt('yoda', guess);
    server.clock.advance(59);
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ error: 'account_blocked' });
    server.clock.advance(1);
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true, text: welcome });
  });

  it('after the block ends, the count starts again from zero', async () => {
    const server = await Server.start({ blockDuration: 60 });
    for (const guess of ['one', 'two', 'three']) await server.attempt('yoda', guess);
    server.clock.advance(60);
    expect(await server.attempt('yoda', 'four')).toMatchObject({ error: 'invalid_password', text: invalidPassword });
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true });
  });

  it('only the account with the failures is blocked', async () => {
    const server = await Server.start();
    for (const guess of ['one', 'two', 'three']) await server.attempt('yoda', guess, '10.0.0.1');
    expect(await server.attempt('luke', 'sunrise', '10.0.0.1')).toMatchObject({ ok: true, text: welcome });
  });

  it('a successful login resets the count', async () => {
    const server = await Server.start();
    await server.attempt('yoda', 'one');
    await server.attempt('yoda', 'two');
    const yoda = await server.login('yoda');
    await server.run(yoda.caller, 'logout');
    expect(await server.attempt('yoda', 'three')).toMatchObject({ error: 'invalid_password', text: invalidPassword });
    expect(await server.attempt('yoda', 'four')).toMatchObject({ error: 'invalid_password', text: invalidPassword });
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true, text: welcome });
  });

  it('unknown user: Invalid Username. Please try again', async () => {
    const server = await Server.start();
    expect(await server.attempt('vader', 'dark', '10.0.0.9')).toEqual({
      type: 'reply',
      cmd: 'login',
      ok: false,
      error: 'invalid_user',
      text: invalidUsername,
    });
  });

  it('a name that is not a valid username is an unknown user', async () => {
    const server = await Server.start();
    expect(await server.attempt('yo{da}', 'wise', '10.0.0.9')).toMatchObject({ error: 'invalid_user', text: invalidUsername });
    expect(await server.attempt('x'.repeat(33), 'wise', '10.0.0.8')).toMatchObject({ error: 'invalid_user', text: invalidUsername });
  });

  it('usernames are case-sensitive', async () => {
    const server = await Server.start();
    expect(await server.attempt('Yoda', 'wise', '10.0.0.9')).toMatchObject({ error: 'invalid_user', text: invalidUsername });
  });

  it('three unknown-user attempts from one address block that address for block_duration seconds', async () => {
    const server = await Server.start({ blockDuration: 60 });
    const address = '10.0.0.66';
    expect(await server.attempt('vader', 'x', address)).toMatchObject({ error: 'invalid_user', text: invalidUsername });
    expect(await server.attempt('tarkin', 'x', address)).toMatchObject({ error: 'invalid_user', text: invalidUsername });
    const third = await server.attempt('jabba', 'x', address);
    expect(third).toMatchObject({ ok: false, error: 'invalid_user', locked: 'address' });
    expect(third.text).toMatch(/^Invalid Username\./);

    // Refused even for a real user with the right password.
    const refused = await server.attempt('yoda', 'wise', address);
    expect(refused).toMatchObject({ ok: false, error: 'address_blocked' });
    expect(refused.text).not.toBe(welcome);
    expect(refused).not.toHaveProperty('token');

    server.clock.advance(59);
    expect(await server.attempt('yoda', 'wise', address)).toMatchObject({ error: 'address_blocked' });
    server.clock.advance(1);
    expect(await server.attempt('yoda', 'wise', address)).toMatchObject({ ok: true, text: welcome });
  });

  it('a blocked address does not block other addresses, nor the accounts tried', async () => {
    const server = await Server.start();
    for (const name of ['vader', 'tarkin', 'jabba']) await server.attempt(name, 'x', '10.0.0.66');
    expect(await server.attempt('yoda', 'wise', '10.0.0.67')).toMatchObject({ ok: true, text: welcome });
    expect(await server.attempt('vader', 'x', '10.0.0.68')).toMatchObject({ error: 'invalid_user', text: invalidUsername });
  });

  it('a blocked address is refused through any replica', async () => {
    const server = await Server.start();
    for (const name of ['vader', 'tarkin', 'jabba']) await server.attempt(name, 'x', '10.0.0.66');
    expect(await server.replica().attempt('luke', 'sunrise', '10.0.0.66')).toMatchObject({ error: 'address_blocked' });
  });

  it('two unknown-user attempts do not block the address', async () => {
    const server = await Server.start();
    await server.attempt('vader', 'x', '10.0.0.66');
    await server.attempt('tarkin', 'x', '10.0.0.66');
    expect(await server.attempt('yoda', 'wise', '10.0.0.66')).toMatchObject({ ok: true, text: welcome });
  });

  it('user already online: the login is denied, This user is already logged in', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.attempt('yoda', 'wise', '10.0.0.99')).toEqual({
      type: 'reply',
      cmd: 'login',
      ok: false,
      error: 'already_logged_in',
      text: alreadyLoggedIn,
    });
    // The live session is untouched.
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
  });

  it('a user online through one replica cannot log in through another', async () => {
    const server = await Server.start();
    await server.login('yoda');
    expect(await server.replica().attempt('yoda', 'wise')).toMatchObject({ error: 'already_logged_in', text: alreadyLoggedIn });
  });

  it('two logins racing for one user: exactly one wins', async () => {
    const server = await Server.start();
    const replies = await Promise.all([server.attempt('yoda', 'wise', '10.0.0.1'), server.replica().attempt('yoda', 'wise', '10.0.0.2')]);
    expect(replies.filter((r) => r.ok)).toHaveLength(1);
    expect(replies.filter((r) => !r.ok)).toMatchObject([{ error: 'already_logged_in', text: alreadyLoggedIn }]);
  });

  it('after logout the user can log in again', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'logout')).toMatchObject({ ok: true });
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true, text: welcome });
  });

  it('presence: every other online user is told <user> logged in', async () => {
    const server = await Server.start();
    await server.login('luke');
    await server.login('hans');
    const marks = { luke: await server.mark('luke'), hans: await server.mark('hans') };
    const yoda = await server.login('yoda');
    for (const user of ['luke', 'hans'] as const) {
      expect(await server.events(user, marks[user])).toMatchObject([
        { type: 'presence', user: 'yoda', state: 'in', text: 'yoda logged in' },
      ]);
    }
    // Not the user who logged in, nor anyone offline.
    expect(await server.texts('yoda', String(yoda.reply.cursor))).not.toContain('yoda logged in');
    expect(await server.texts('leia')).toEqual([]);
  });

  it('presence: the users that <user> has blocked are not told <user> logged in', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.run(yoda.caller, 'block luke');
    await server.run(yoda.caller, 'logout');
    await server.login('luke');
    await server.login('hans');
    const marks = { luke: await server.mark('luke'), hans: await server.mark('hans') };
    await server.login('yoda');
    expect(await server.texts('luke', marks.luke)).toEqual([]);
    expect(await server.texts('hans', marks.hans)).toEqual(['yoda logged in']);
  });

  it('usage: login <username> <password>', async () => {
    const server = await Server.start();
    expect(await server.run(server.caller(), 'login yoda')).toMatchObject({
      ok: false,
      error: 'usage',
      text: 'Usage: login <username> <password>',
    });
    expect(await server.run(server.caller(), 'login')).toMatchObject({ error: 'usage', text: 'Usage: login <username> <password>' });
  });
});
