import { describe, expect, it } from 'vitest';
import { dispatch } from '../../handlers/registry.js';
import type { Context } from '../../handlers/types.js';
import { Server } from './harness.js';
import { fingerprint } from '../support/fingerprints.js';

const invalidCommand = 'Error. Invalid command';

describe('dispatch: anything that is not a known verb', () => {
  it('Error. Invalid command', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const line of ['dance', 'WHOELSE', 'Message luke hi', 'whoelse2', ' whoelse', '', ' ', 'msg luke hi']) {
      expect(await server.run(yoda.caller, line), JSON.stringify(line)).toMatchObject({
        type: 'reply',
        ok: false,
        error: 'invalid_command',
        text: invalidCommand,
      });
    }
  });

  it('Error. Invalid command before login too', async () => {
    const server = await Server.start();
    expect(await server.run(server.caller(), 'dance')).toEqual({
      type: 'reply',
      cmd: 'dance',
      ok: false,
      error: 'invalid_command',
      text: invalidCommand,
    });
  });
});

describe('dispatch: missing or malformed arguments', () => {
  const cases: [string, string][] = [
    ['message luke', 'message <user> <text>'],
    ['broadcast', 'broadcast <text>'],
    ['whoelse now', 'whoelse'],
    ['whoelsesince', 'whoelsesince <seconds>'],
    ['block', 'block <user>'],
    ['unblock', 'unblock <user>'],
    ['logout please', 'logout'],
    ['startprivate', 'startprivate <user>'],
    ['private luke', 'private <user> <text>'],
    ['stopprivate', 'stopprivate <user>'],
  ];
  for (const [line, synopsis] of cases) {
    it(`${line}: Usage: ${synopsis}`, async () => {
      const server = await Server.start();
      const yoda = await server.login('yoda');
      expect(await server.run(yoda.caller, line)).toMatchObject({ ok: false, error: 'usage', text: `Usage: ${synopsis}` });
    });
  }
});

describe('dispatch: commands that need a session', () => {
  const lines = [
    'message luke hi',
    'broadcast hi',
    'whoelse',
    'whoelsesince 10',
    'block luke',
    'unblock luke',
    'logout',
    'startprivate luke',
    'acceptprivate luke',
    'declineprivate luke',
    'private luke hi',
    'stopprivate luke',
    `p2p 4501 ${fingerprint(1)}`,
    'touch',
  ];

  it('without logging in: not_logged_in, and nothing happens', async () => {
    const server = await Server.start();
    await server.login('luke');
    const mark = await server.mark('luke');
    for (const line of lines) {
      const reply = await server.run(server.caller(), line);
      expect(reply, line).toMatchObject({ type: 'reply', ok: false, error: 'not_logged_in' });
      expect(reply.text, line).toMatch(/^Error\./);
    }
    expect(await server.events('luke', mark)).toEqual([]);
  });

  it('with a forged token: not_logged_in', async () => {
    const server = await Server.start();
    await server.login('yoda');
    const forged = { address: '10.0.0.66', session: { user: 'yoda', token: 'yoda:forged' } };
    for (const line of lines) {
      expect(await server.run(forged, line), line).toMatchObject({ ok: false, error: 'not_logged_in' });
    }
  });

  it('a token names its own user only', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const stolen = { address: '10.0.0.66', session: { user: 'luke', token: String(yoda.reply.token) } };
    expect(await server.run(stolen, 'broadcast I am luke')).toMatchObject({ ok: false, error: 'not_logged_in' });
  });

  it('after logout: not_logged_in', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.run(yoda.caller, 'logout');
    for (const line of lines) {
      expect(await server.run(yoda.caller, line), line).toMatchObject({ ok: false, error: 'not_logged_in' });
    }
  });
});

describe('dispatch: control characters, NUL and invalid UTF-8', () => {
  const bad: [string, string][] = [
    ['NUL', '\u0000'],
    ['BEL', '\u0007'],
    ['ESC (terminal escape)', '\u001b[2J'],
    ['tab', '\t'],
    ['carriage return', '\r'],
    ['line feed', '\n'],
    ['DEL', '\u007f'],
    ['a lone surrogate (invalid UTF-8 decoded)', '\ud800'],
  ];
  for (const [name, chars] of bad) {
    it(`${name} is rejected with a clear error and never reaches other users`, async () => {
      const server = await Server.start();
      const yoda = await server.login('yoda');
      await server.login('luke');
      const mark = await server.mark('luke');
      for (const line of [`message luke hi${chars}there`, `broadcast hi${chars}there`]) {
        const reply = await server.run(yoda.caller, line);
        expect(reply, JSON.stringify(line)).toMatchObject({ type: 'reply', ok: false });
        expect(reply.text).toMatch(/^Error\./);
        expect(reply.text).not.toContain(chars);
      }
      expect(await server.events('luke', mark)).toEqual([]);
    });
  }

  it('C1 control characters (U+0080 to U+009F, such as the 8-bit CSI escape U+009B) are rejected too', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    for (const chars of ['\u009b2J', '\u0085', '\u0080']) {
      const reply = await server.run(yoda.caller, `message luke hi${chars}`);
      expect(reply, JSON.stringify(chars)).toMatchObject({ type: 'reply', ok: false });
    }
    expect(await server.events('luke', mark)).toEqual([]);
  });

  it('NUL in a login line is rejected and does not log in', async () => {
    const server = await Server.start();
    const reply = await server.run(server.caller(), 'login yoda wise\u0000');
    expect(reply).toMatchObject({ ok: false });
    expect(reply).not.toHaveProperty('token');
    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true });
  });

  it('ordinary Unicode text is delivered as sent', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'message luke Größe 🙂 日本 "quoted" \\ back')).toMatchObject({ ok: true });
    expect(await server.texts('luke', mark)).toEqual(['yoda: Größe 🙂 日本 "quoted" \\ back']);
  });
});

describe('dispatch: command line at most maxLineBytes', () => {
  it('a line over the limit gets too_long and is not delivered', async () => {
    const server = await Server.start({ maxMessageLength: 100_000 });
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    const prefix = 'message luke ';
    expect(await server.run(yoda.caller, prefix + 'a'.repeat(8192 - prefix.length))).toMatchObject({ ok: true });
    const long = await server.run(yoda.caller, prefix + 'b'.repeat(8193 - prefix.length));
    expect(long).toMatchObject({ type: 'reply', ok: false, error: 'too_long' });
    expect(long.text).toMatch(/^Error\./);
    const texts = await server.texts('luke', mark);
    expect(texts).toHaveLength(1);
    expect(texts[0]).toBe(`yoda: ${'a'.repeat(8192 - prefix.length)}`);
  });

  it('the line limit counts bytes, not characters', async () => {
    const server = await Server.start({ maxMessageLength: 100_000 });
    const yoda = await server.login('yoda');
    await server.login('luke');
    // 13 + 2 * 4090 = 8193 bytes in 4103 characters.
    expect(await server.run(yoda.caller, `message luke ${'é'.repeat(4090)}`)).toMatchObject({ ok: false, error: 'too_long' });
  });

  it('applies before login too', async () => {
    const server = await Server.start({ maxLineBytes: 100 });
    expect(await server.run(server.caller(), `login yoda ${'x'.repeat(100)}`)).toMatchObject({ ok: false, error: 'too_long' });
  });
});

describe('dispatch: per-session command rate limit', () => {
  it('commands over commandBurst at once are refused with rate_limited, then allowed again at commandRate', async () => {
    const server = await Server.start({ commandRate: 2, commandBurst: 3 });
    const yoda = await server.login('yoda');
    for (let k = 0; k < 3; k++) expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
    const refused = await server.run(yoda.caller, 'whoelse');
    expect(refused).toMatchObject({ type: 'reply', cmd: 'whoelse', ok: false, error: 'rate_limited' });
    expect(refused.text).toMatch(/^Error\./);
    server.clock.advance(0.5);
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ error: 'rate_limited' });
  });

  it('a refused command does nothing', async () => {
    const server = await Server.start({ commandRate: 1, commandBurst: 1 });
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'message luke one')).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, 'message luke two')).toMatchObject({ error: 'rate_limited' });
    expect(await server.texts('luke', mark)).toEqual(['yoda: one']);
  });

  it('the limit is per session: other users are not slowed down', async () => {
    const server = await Server.start({ commandRate: 1, commandBurst: 2 });
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    for (let k = 0; k < 3; k++) await server.run(yoda.caller, 'whoelse');
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ error: 'rate_limited' });
    expect(await server.run(luke.caller, 'whoelse')).toMatchObject({ ok: true });
  });

  it('the limit is shared across replicas', async () => {
    const server = await Server.start({ commandRate: 1, commandBurst: 2 });
    const other = server.replica();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
    expect(await other.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ error: 'rate_limited' });
    expect(await other.run(yoda.caller, 'whoelse')).toMatchObject({ error: 'rate_limited' });
  });

  it('default: 20/s with a burst of 40', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (let k = 0; k < 40; k++) expect(await server.run(yoda.caller, 'whoelse'), `command ${k + 1}`).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ error: 'rate_limited' });
    server.clock.advance(0.05);
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ error: 'rate_limited' });
  });

  it('commandRate 0 turns the limit off', async () => {
    const server = await Server.start({ commandRate: 0 });
    const yoda = await server.login('yoda');
    const replies = [];
    for (let k = 0; k < 200; k++) replies.push(await server.run(yoda.caller, 'whoelse'));
    expect(replies.filter((r) => !r.ok)).toEqual([]);
  });
});

describe('dispatch: login attempts rate-limited per address', () => {
  it('attempts over loginBurst at once from one address are refused with rate_limited; other addresses are not', async () => {
    const server = await Server.start({ loginRate: 1, loginBurst: 2 });
    expect(await server.attempt('yoda', 'wise', '10.0.0.50')).toMatchObject({ ok: true });
    expect(await server.attempt('luke', 'sunrise', '10.0.0.50')).toMatchObject({ ok: true });
    const refused = await server.attempt('hans', 'falcon', '10.0.0.50');
    expect(refused).toMatchObject({ type: 'reply', cmd: 'login', ok: false, error: 'rate_limited' });
    expect(refused).not.toHaveProperty('token');
    expect(await server.attempt('hans', 'falcon', '10.0.0.51')).toMatchObject({ ok: true });
  });

  it('allowed again at loginRate', async () => {
    const server = await Server.start({ loginRate: 1, loginBurst: 1 });
    expect(await server.attempt('yoda', 'wise', '10.0.0.50')).toMatchObject({ ok: true });
    expect(await server.attempt('luke', 'sunrise', '10.0.0.50')).toMatchObject({ error: 'rate_limited' });
    server.clock.advance(1);
    expect(await server.attempt('luke', 'sunrise', '10.0.0.50')).toMatchObject({ ok: true });
  });

  it('default (10/s, burst 50): several users behind one address do not trip it', async () => {
    const server = await Server.start();
    for (let k = 0; k < 50; k++) {
      const client = await server.login(['yoda', 'luke', 'hans', 'leia'][k % 4], '10.0.0.50');
      expect(await server.run(client.caller, 'logout')).toMatchObject({ ok: true });
    }
    expect(await server.attempt('yoda', 'wise', '10.0.0.50')).toMatchObject({ error: 'rate_limited' });
  });

  it('loginRate 0 turns the limit off', async () => {
    const server = await Server.start({ loginRate: 0 });
    const refused = [];
    for (let k = 0; k < 120; k++) {
      const reply = await server.attempt('yoda', 'wise', '10.0.0.50');
      if (!reply.ok) refused.push(reply);
      const caller = { address: '10.0.0.50', session: { user: 'yoda', token: String(reply.token) } };
      await server.run(caller, 'logout');
    }
    expect(refused).toEqual([]);
  });
});

describe('dispatch: no input crashes the server', () => {
  it('every odd line gets the reply the spec gives it, logged in or not', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const usage = (synopsis: string) => ['usage', `Usage: ${synopsis}`];
    const notLoggedIn = ['not_logged_in', 'Error. You are not logged in'];
    // line: [error code, text] before login, then as yoda (null: ok).
    const cases: [string, string[], string[] | null][] = [
      ['login', usage('login <username> <password>'), usage('login <username> <password>')],
      ['login  ', usage('login <username> <password>'), usage('login <username> <password>')],
      ['login yoda', usage('login <username> <password>'), usage('login <username> <password>')],
      ['resume', usage('resume <token> [<cursor>]'), usage('resume <token> [<cursor>]')],
      ['resume :', notLoggedIn, ['already_logged_in', 'This user is already logged in']],
      // A cursor is one the server handed out (SPEC section 4): anything else is a usage error.
      ['resume ::: 1', usage('resume <token> [<cursor>]'), usage('resume <token> [<cursor>]')],
      ['resume yoda:x -1', usage('resume <token> [<cursor>]'), usage('resume <token> [<cursor>]')],
      ['p2p 99999999999999999999', notLoggedIn, usage('p2p [<host>] <port> <fingerprint>')],
      ['whoelsesince 999999999999999', notLoggedIn, null],
      ['whoelsesince 9999999999999999999999', notLoggedIn, usage('whoelsesince <seconds>')],
      ['message  ', notLoggedIn, usage('message <user> <text>')],
      // Well-formed usernames nobody has.
      ['block .', notLoggedIn, ['invalid_user', 'Error. Invalid user']],
      ['block ..', notLoggedIn, ['invalid_user', 'Error. Invalid user']],
      ['unblock -', notLoggedIn, ['invalid_user', 'Error. Invalid user']],
      // A byte-order mark is not whitespace: the verb is not whoelse.
      ['\uFEFFwhoelse', ['invalid_command', invalidCommand], ['invalid_command', invalidCommand]],
    ];
    for (const [line, before, after] of cases) {
      const cmd = line.split(' ')[0];
      for (const [caller, expected] of [[server.caller(), before], [yoda.caller, after]] as const) {
        const reply = await server.run(caller, line);
        if (expected === null) expect(reply, JSON.stringify(line)).toMatchObject({ type: 'reply', cmd, ok: true, text: '', users: [] });
        else expect(reply, JSON.stringify(line)).toMatchObject({ type: 'reply', cmd, ok: false, error: expected[0], text: expected[1] });
      }
    }
  });

  it('the state store failing gives an unavailable reply, not an exception', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const failing = new Proxy(server.ctx.state, {
      get: (target, name) => {
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? () => Promise.reject(new Error('connection lost')) : value;
      },
    });
    const ctx: Context = { ...server.ctx, state: failing };
    for (const [caller, line] of [[yoda.caller, 'whoelse'], [yoda.caller, 'message luke hi'], [server.caller(), 'login luke sunrise']] as const) {
      const reply = await dispatch(ctx, caller, line);
      expect(reply, line).toMatchObject({ type: 'reply', ok: false, error: 'unavailable' });
      expect(reply.text).toMatch(/^Error\./);
    }
  });
});
