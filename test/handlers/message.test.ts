import { describe, expect, it } from 'vitest';
import { Server } from './harness.js';

const blockedText = 'Your message could not be delivered as the recipient has blocked you';

describe('message <user> <text>', () => {
  it('delivers to <user> now if online, rendered <sender>: <text>; success prints nothing', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'message luke Hey Dude')).toEqual({ type: 'reply', cmd: 'message', ok: true, text: '' });
    const events = await server.events('luke', mark);
    expect(events).toMatchObject([{ type: 'message', from: 'yoda', offline: false, text: 'yoda: Hey Dude' }]);
    // The id is the cursor after the event: nothing follows it.
    expect(await server.events('luke', events[0].id)).toEqual([]);
    expect(events[0].at).toBe(server.clock.now());
  });

  it('the text is the rest of the line and may contain spaces', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    await server.run(yoda.caller, 'message luke Do. Or do not.  There is no try.');
    expect(await server.texts('luke', mark)).toEqual(['yoda: Do. Or do not.  There is no try.']);
  });

  it('the sender is not sent a copy', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('yoda');
    await server.run(yoda.caller, 'message luke Hey Dude');
    expect(await server.texts('yoda', mark)).toEqual([]);
  });

  it('stores it for the recipient\'s next login if offline', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'message luke Hey Dude')).toMatchObject({ ok: true, text: '' });
    const luke = await server.login('luke');
    expect(await server.events('luke', String(luke.reply.cursor))).toMatchObject([
      { type: 'message', from: 'yoda', offline: true, text: 'yoda: Hey Dude' },
    ]);
  });

  it('stored messages survive logout and a server restart (another replica on the same state store)', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.run(yoda.caller, 'message luke Hey Dude');
    await server.run(yoda.caller, 'logout');
    const restarted = server.replica();
    const luke = await restarted.login('luke');
    expect(await restarted.texts('luke', String(luke.reply.cursor))).toEqual(['yoda: Hey Dude']);
  });

  it('unknown user: Error. Invalid user', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'message vader Join me')).toEqual({
      type: 'reply',
      cmd: 'message',
      ok: false,
      error: 'invalid_user',
      text: 'Error. Invalid user',
    });
    expect(await server.run(yoda.caller, 'message {luke} hi')).toMatchObject({ error: 'invalid_user', text: 'Error. Invalid user' });
    expect(await server.run(yoda.caller, 'message Luke hi')).toMatchObject({ error: 'invalid_user', text: 'Error. Invalid user' });
  });

  it('self: Error. Cannot message self', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const mark = await server.mark('yoda');
    expect(await server.run(yoda.caller, 'message yoda hello me')).toEqual({
      type: 'reply',
      cmd: 'message',
      ok: false,
      error: 'self',
      text: 'Error. Cannot message self',
    });
    expect(await server.texts('yoda', mark)).toEqual([]);
  });

  it('recipient blocked the sender (online): Your message could not be delivered as the recipient has blocked you', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'message luke Hey Dude')).toEqual({
      type: 'reply',
      cmd: 'message',
      ok: false,
      error: 'blocked',
      text: blockedText,
    });
    expect(await server.texts('luke', mark)).toEqual([]);
  });

  it('recipient blocked the sender (offline): refused and nothing is stored', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    await server.run(luke.caller, 'logout');
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'message luke Hey Dude')).toMatchObject({ ok: false, error: 'blocked', text: blockedText });
    const again = await server.login('luke');
    expect(await server.events('luke', String(again.reply.cursor))).toEqual([]);
  });

  it('blocks are directional: the blocker can still message the user they blocked', async () => {
    const server = await Server.start();
    await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'message yoda I am not listening')).toMatchObject({ ok: true, text: '' });
    expect(await server.texts('yoda', mark)).toEqual(['luke: I am not listening']);
  });

  it('after unblock the sender reaches the recipient again', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    await server.run(luke.caller, 'unblock yoda');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'message luke Hey Dude')).toMatchObject({ ok: true });
    expect(await server.texts('luke', mark)).toEqual(['yoda: Hey Dude']);
  });

  it('usage: message <user> <text>', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const line of ['message', 'message luke', 'message luke ', 'message  luke hi', 'message luke    ']) {
      expect(await server.run(yoda.caller, line), line).toMatchObject({
        ok: false,
        error: 'usage',
        text: 'Usage: message <user> <text>',
      });
    }
  });

  it('message text at most maxMessageLength characters', async () => {
    const server = await Server.start({ maxMessageLength: 10 });
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, `message luke ${'a'.repeat(10)}`)).toMatchObject({ ok: true });
    const long = await server.run(yoda.caller, `message luke ${'b'.repeat(11)}`);
    expect(long).toMatchObject({ ok: false, error: 'too_long' });
    expect(long.text).toMatch(/^Error\./);
    expect(await server.texts('luke', mark)).toEqual([`yoda: ${'a'.repeat(10)}`]);
  });

  it('the default limit is 1000 characters, counted as characters not bytes', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    expect(await server.run(yoda.caller, `message luke ${'é'.repeat(1000)}`)).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, `message luke ${'🙂'.repeat(1000)}`)).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, `message luke ${'a'.repeat(1001)}`)).toMatchObject({ ok: false, error: 'too_long' });
  });

  it('a too-long message to an offline user is not stored', async () => {
    const server = await Server.start({ maxMessageLength: 10 });
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, `message luke ${'b'.repeat(11)}`)).toMatchObject({ error: 'too_long' });
    const luke = await server.login('luke');
    expect(await server.events('luke', String(luke.reply.cursor))).toEqual([]);
  });
});
