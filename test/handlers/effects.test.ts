import { describe, expect, it } from 'vitest';
import { dispatch, dispatchArgs } from '../../handlers/registry.js';
import { wireReply } from '../../handlers/replies.js';
import type { Caller, Reply } from '../../handlers/types.js';
import { importUsers } from '../../handlers/users.js';
import { Cursor } from '../../state/cursor.js';
import { Server, passwordOf } from './harness.js';

/**
 * What a reply asks of its transport (handlers/types.ts `Effects`), checked on
 * the reply `dispatch` returns, before `wireReply` strips it: the harness's
 * `run` shows only what a client sees.
 */

/** A reply as it travels: what `wireReply` keeps, through JSON. */
function onWire(reply: Reply): unknown {
  return JSON.parse(JSON.stringify(wireReply(reply)));
}

/** Runs a line through `dispatch` itself, effects and all. */
function raw(server: Server, caller: Caller, line: string): Promise<Reply> {
  return dispatch(server.ctx, caller, line);
}

describe('effects: login', () => {
  it('a successful login attaches the session: its user, token and a Cursor equal to the reply cursor', async () => {
    const server = await Server.start();
    // Something in both streams first, so the cursor is not the trivial 0-0.
    const luke = await server.login('luke');
    await server.run(luke.caller, 'message yoda before');
    await server.run(luke.caller, 'broadcast hello');
    const lobbyBefore = await server.ctx.state.lobbyHead();
    expect(lobbyBefore).toBeGreaterThan(0);
    const reply = await raw(server, server.caller('10.0.0.1'), `login yoda ${passwordOf('yoda')}`);
    expect(reply).toMatchObject({ type: 'reply', cmd: 'login', ok: true, user: 'yoda' });
    expect(typeof reply.token).toBe('string');
    expect(typeof reply.cursor).toBe('string');
    const attach = reply.effects?.attach;
    expect(attach).toBeDefined();
    expect(attach!.cursor).toBeInstanceOf(Cursor);
    expect(attach).toEqual({ user: 'yoda', token: reply.token, cursor: Cursor.parse(String(reply.cursor)) });
    expect(String(attach!.cursor)).toBe(reply.cursor);
    // It starts where the store put the session.
    const stored = await server.ctx.state.sessionCursor('yoda', String(reply.token));
    expect(stored).not.toBeNull();
    expect(attach!.cursor.equals(stored!.cursor)).toBe(true);
    // The lobby position read before the login announced itself: every lobby event from then on reaches the session.
    expect(attach!.cursor.lobby).toBe(lobbyBefore);
    expect(reply.effects).toEqual({ attach });
    // On the wire: the reply without its effects, the cursor as its string.
    const { effects: _effects, ...wire } = reply;
    expect(onWire(reply)).toEqual(wire);
    expect(onWire(reply)).not.toHaveProperty('effects');
  });

  it('a wrong password and an unknown user are failed logins (counted by the connection), and attach nothing', async () => {
    const server = await Server.start();
    const wrong = await raw(server, server.caller('10.0.0.1'), 'login yoda not-the-password');
    expect(wrong).toMatchObject({ ok: false, error: 'invalid_password' });
    expect(wrong.effects).toEqual({ failedLogin: true });

    const unknown = await raw(server, server.caller('10.0.0.2'), 'login nobody whatever');
    expect(unknown).toMatchObject({ ok: false, error: 'invalid_user' });
    expect(unknown.effects).toEqual({ failedLogin: true });

    // A malformed name is an unknown user too.
    const malformed = await raw(server, server.caller('10.0.0.3'), 'login no{body} whatever');
    expect(malformed).toMatchObject({ ok: false, error: 'invalid_user' });
    expect(malformed.effects).toEqual({ failedLogin: true });

    for (const reply of [wrong, unknown, malformed]) {
      expect(onWire(reply)).not.toHaveProperty('effects');
      expect(onWire(reply)).toMatchObject({ type: 'reply', cmd: 'login', ok: false });
    }
  });

  it('the failure that locks an account or an address is a failed login too', async () => {
    const server = await Server.start({ loginFailures: 2 });
    await raw(server, server.caller('10.0.0.1'), 'login yoda wrong1');
    const locking = await raw(server, server.caller('10.0.0.1'), 'login yoda wrong2');
    expect(locking).toMatchObject({ ok: false, error: 'invalid_password', locked: 'account' });
    expect(locking.effects).toEqual({ failedLogin: true });

    await raw(server, server.caller('10.0.0.9'), 'login ghost1 x');
    const addressLocking = await raw(server, server.caller('10.0.0.9'), 'login ghost2 x');
    expect(addressLocking).toMatchObject({ ok: false, error: 'invalid_user', locked: 'address' });
    expect(addressLocking.effects).toEqual({ failedLogin: true });
  });

  it('a blocked account closes the connection, with the right password too', async () => {
    const server = await Server.start({ loginFailures: 2 });
    await raw(server, server.caller('10.0.0.1'), 'login yoda wrong1');
    await raw(server, server.caller('10.0.0.1'), 'login yoda wrong2');
    for (const password of ['wrong3', passwordOf('yoda')]) {
      const reply = await raw(server, server.caller('10.0.0.5'), `login yoda ${password}`);
      expect(reply, password).toMatchObject({ ok: false, error: 'account_blocked' });
      expect(reply.effects, password).toEqual({ close: true });
      expect(onWire(reply)).not.toHaveProperty('effects');
    }
  });

  it('a login refused for another reason carries no effects', async () => {
    const server = await Server.start();
    await server.login('yoda');
    const again = await raw(server, server.caller('10.0.0.8'), `login yoda ${passwordOf('yoda')}`);
    expect(again).toMatchObject({ ok: false, error: 'already_logged_in' });
    expect(again.effects).toBeUndefined();
    const usage = await raw(server, server.caller('10.0.0.8'), 'login yoda');
    expect(usage).toMatchObject({ ok: false, error: 'usage' });
    expect(usage.effects).toBeUndefined();
  });
});

describe('effects: resume', () => {
  it('without a cursor attaches the session at its stored cursor', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const token = String(yoda.reply.token);
    const reply = await raw(server, server.caller('10.0.0.77'), `resume ${token}`);
    expect(reply).toMatchObject({ ok: true, cmd: 'resume', user: 'yoda', token, cursor: yoda.reply.cursor });
    const attach = reply.effects?.attach;
    expect(attach?.cursor).toBeInstanceOf(Cursor);
    expect(attach).toEqual({ user: 'yoda', token, cursor: Cursor.parse(String(reply.cursor)) });
    expect(String(attach!.cursor)).toBe(reply.cursor);
    expect(onWire(reply)).not.toHaveProperty('effects');
  });

  it('with a cursor attaches the session at that cursor', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'message yoda one');
    await server.run(luke.caller, 'broadcast two');
    const mark = await server.mark('yoda');
    expect(mark).not.toBe(yoda.reply.cursor);
    const reply = await raw(server, server.caller('10.0.0.77'), `resume ${yoda.reply.token} ${mark}`);
    expect(reply).toMatchObject({ ok: true, cursor: mark });
    expect(reply.effects?.attach).toEqual({ user: 'yoda', token: yoda.reply.token, cursor: Cursor.parse(mark) });
    expect(String(reply.effects!.attach!.cursor)).toBe(mark);
  });

  it('a refused resume attaches nothing', async () => {
    const server = await Server.start();
    await server.login('yoda');
    const reply = await raw(server, server.caller(), 'resume yoda:forged');
    expect(reply).toMatchObject({ ok: false, error: 'not_logged_in' });
    expect(reply.effects).toBeUndefined();
  });
});

describe('effects: ping', () => {
  it('answers {type: pong} on the wire, without a session', async () => {
    const server = await Server.start();
    const reply = await raw(server, server.caller(), 'ping');
    expect(reply).toMatchObject({ cmd: 'ping', ok: true });
    expect(wireReply(reply)).toEqual({ type: 'pong' });
    expect(onWire(reply)).toEqual({ type: 'pong' });
    // The harness shows what the client sees.
    expect(await server.run(server.caller(), 'ping')).toEqual({ type: 'pong' });
  });

  it('answers pong with a session too; with arguments it is a usage error', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(wireReply(await raw(server, yoda.caller, 'ping'))).toEqual({ type: 'pong' });
    const usage = await raw(server, server.caller(), 'ping now');
    expect(usage).toMatchObject({ ok: false, error: 'usage', text: 'Usage: ping' });
    expect(usage.effects).toBeUndefined();
  });
});

describe('effects: ordinary replies', () => {
  it('an ok message reply has no effects and goes on the wire as it is', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const reply = await raw(server, yoda.caller, 'message luke hi');
    expect(reply).toMatchObject({ type: 'reply', cmd: 'message', ok: true });
    expect(reply).not.toHaveProperty('effects');
    expect(wireReply(reply)).toBe(reply);
  });

  it('a logout, a refused command and whoelse carry no effects', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const line of ['whoelse', 'message nobody hi', 'dance', 'logout']) {
      const reply = await raw(server, yoda.caller, line);
      expect(reply, line).not.toHaveProperty('effects');
    }
  });
});

describe('dispatchArgs: arguments already apart, under the rules of a line', () => {
  it('runs a command like its line', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    const reply = await dispatchArgs(server.ctx, yoda.caller, 'message', ['luke', 'hello there']);
    expect(reply).toEqual(await server.run(yoda.caller, 'message luke hello there'));
    expect(await server.texts('luke', mark)).toEqual(['yoda: hello there', 'yoda: hello there']);
  });

  it('logs in with a password that contains spaces, attaching the session', async () => {
    const server = await Server.start();
    await importUsers(server.ctx, [{ user: 'obiwan', password: 'use the  force ' }]);
    const wrong = await dispatchArgs(server.ctx, server.caller('10.0.1.1'), 'login', ['obiwan', 'use the force']);
    expect(wrong).toMatchObject({ ok: false, error: 'invalid_password' });
    expect(wrong.effects).toEqual({ failedLogin: true });
    const reply = await dispatchArgs(server.ctx, server.caller('10.0.1.1'), 'login', ['obiwan', 'use the  force ']);
    expect(reply).toMatchObject({ type: 'reply', cmd: 'login', ok: true, user: 'obiwan' });
    expect(reply.effects?.attach).toEqual({ user: 'obiwan', token: reply.token, cursor: Cursor.parse(String(reply.cursor)) });
    // The same password works as a line too, once that session is over.
    const caller: Caller = { address: '10.0.1.1', session: { user: 'obiwan', token: String(reply.token) } };
    expect(await server.run(caller, 'logout')).toMatchObject({ ok: true });
    expect(await server.run(server.caller('10.0.1.1'), 'login obiwan use the  force ')).toMatchObject({ ok: true, user: 'obiwan' });
  });

  it('refuses control characters, NUL and lone surrogates in any argument, and delivers nothing', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    for (const chars of ['\u0000', '\u0007', '\u001b[2J', '\t', '\r', '\n', '\u007f', '\u009b', '\ud800']) {
      for (const args of [
        ['luke', `hi${chars}there`],
        [`lu${chars}ke`, 'hi'],
      ]) {
        const reply = await dispatchArgs(server.ctx, yoda.caller, 'message', args);
        expect(reply, JSON.stringify(args)).toEqual({
          type: 'reply',
          cmd: 'message',
          ok: false,
          error: 'invalid_command',
          text: 'Error. Invalid command: control characters and invalid UTF-8 are not allowed',
        });
      }
    }
    const login = await dispatchArgs(server.ctx, server.caller('10.0.1.2'), 'login', ['hans', `${passwordOf('hans')}\u0000`]);
    expect(login).toMatchObject({ ok: false, error: 'invalid_command' });
    expect(login).not.toHaveProperty('token');
    expect(await server.texts('luke', mark)).toEqual([]);
  });

  it('refuses arguments longer than a line may be (maxLineBytes, in bytes, counted as the line they make)', async () => {
    const server = await Server.start({ maxMessageLength: 100_000 });
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    const prefix = 'message luke ';
    const fits = 'a'.repeat(8192 - prefix.length);
    expect(await dispatchArgs(server.ctx, yoda.caller, 'message', ['luke', fits])).toMatchObject({ ok: true });
    const over = await dispatchArgs(server.ctx, yoda.caller, 'message', ['luke', 'b'.repeat(8193 - prefix.length)]);
    expect(over).toMatchObject({ type: 'reply', cmd: 'message', ok: false, error: 'too_long', text: 'Error. Line too long (at most 8192 bytes)' });
    // Bytes, not characters: 13 + 2 * 4090 = 8193 bytes.
    expect(await dispatchArgs(server.ctx, yoda.caller, 'message', ['luke', 'é'.repeat(4090)])).toMatchObject({ error: 'too_long' });
    expect(await server.texts('luke', mark)).toEqual([`yoda: ${fits}`]);
  });

  it('over-long applies before login too', async () => {
    const server = await Server.start({ maxLineBytes: 100 });
    const reply = await dispatchArgs(server.ctx, server.caller(), 'login', ['yoda', 'x'.repeat(100)]);
    expect(reply).toMatchObject({ ok: false, error: 'too_long' });
    expect(reply).not.toHaveProperty('token');
  });

  it('refuses an unknown verb', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const verb of ['dance', 'WHOELSE', 'Message', '', 'whoelse ', 'events']) {
      expect(await dispatchArgs(server.ctx, yoda.caller, verb, []), JSON.stringify(verb)).toEqual({
        type: 'reply',
        cmd: verb,
        ok: false,
        error: 'invalid_command',
        text: 'Error. Invalid command',
      });
    }
  });

  it('a command that needs a session is refused without one', async () => {
    const server = await Server.start();
    expect(await dispatchArgs(server.ctx, server.caller(), 'whoelse', [])).toMatchObject({ ok: false, error: 'not_logged_in' });
  });

  it('arguments the line would not have split that way are a usage error, never passed on', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const usage = (synopsis: string) => ({ ok: false, error: 'usage', text: `Usage: ${synopsis}` });
    expect(await dispatchArgs(server.ctx, yoda.caller, 'message', ['luke'])).toMatchObject(usage('message <user> <text>'));
    expect(await dispatchArgs(server.ctx, yoda.caller, 'message', [])).toMatchObject(usage('message <user> <text>'));
    expect(await dispatchArgs(server.ctx, yoda.caller, 'whoelse', ['x'])).toMatchObject(usage('whoelse'));
    expect(await dispatchArgs(server.ctx, yoda.caller, 'logout', ['now'])).toMatchObject(usage('logout'));
    expect(await dispatchArgs(server.ctx, yoda.caller, 'broadcast', ['  '])).toMatchObject(usage('broadcast <text>'));
    expect(await dispatchArgs(server.ctx, yoda.caller, 'whoelsesince', ['abc'])).toMatchObject(usage('whoelsesince <seconds>'));
    expect(await dispatchArgs(server.ctx, yoda.caller, 'block', ['luke skywalker'])).toMatchObject(usage('block <user>'));
    // A username with a space never leaves half of itself in the password.
    const login = await dispatchArgs(server.ctx, server.caller('10.0.1.9'), 'login', ['luke skywalker', passwordOf('luke')]);
    expect(login).toMatchObject(usage('login <username> <password>'));
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
  });
});
