import { describe, expect, it } from 'vitest';
import { Server } from './harness.js';

const partial = 'Your message could not be delivered to some recipients';

describe('broadcast <text>', () => {
  it('to every online user except the sender, rendered <sender>: <text>; success prints nothing', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    await server.login('hans');
    const marks = { yoda: await server.mark('yoda'), luke: await server.mark('luke'), hans: await server.mark('hans') };
    expect(await server.run(yoda.caller, 'broadcast May the force be with you')).toEqual({
      type: 'reply',
      cmd: 'broadcast',
      ok: true,
      text: '',
    });
    for (const user of ['luke', 'hans'] as const) {
      expect(await server.events(user, marks[user])).toMatchObject([
        { type: 'broadcast', from: 'yoda', text: 'yoda: May the force be with you' },
      ]);
    }
    expect(await server.texts('yoda', marks.yoda)).toEqual([]);
  });

  it('nothing is stored for offline users', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'logout');
    expect(await server.run(yoda.caller, 'broadcast Anyone there?')).toMatchObject({ ok: true, text: '' });
    const again = await server.login('luke');
    const leia = await server.login('leia');
    expect(await server.texts('luke', String(again.reply.cursor))).not.toContain('yoda: Anyone there?');
    expect(await server.texts('luke', String(again.reply.cursor))).toEqual(['leia logged in']);
    expect(await server.events('leia', String(leia.reply.cursor))).toEqual([]);
  });

  it('skips those who blocked the sender: Your message could not be delivered to some recipients', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.login('hans');
    await server.run(luke.caller, 'block yoda');
    const marks = { luke: await server.mark('luke'), hans: await server.mark('hans') };
    const reply = await server.run(yoda.caller, 'broadcast Hello all');
    expect(reply).toMatchObject({ type: 'reply', cmd: 'broadcast', ok: true, text: partial });
    expect(await server.texts('luke', marks.luke)).toEqual([]);
    expect(await server.texts('hans', marks.hans)).toEqual(['yoda: Hello all']);
  });

  it('skips everyone when every online user blocked the sender', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'broadcast Hello all')).toMatchObject({ text: partial });
    expect(await server.texts('luke', mark)).toEqual([]);
  });

  it('blocks are directional: a user the sender blocked still gets the broadcast', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    await server.run(yoda.caller, 'block luke');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'broadcast Hello all')).toMatchObject({ ok: true, text: '' });
    expect(await server.texts('luke', mark)).toEqual(['yoda: Hello all']);
  });

  it('with nobody else online it succeeds and prints nothing', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'broadcast Hello?')).toMatchObject({ ok: true, text: '' });
  });

  it('the text is the rest of the line and may contain spaces', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    await server.run(yoda.caller, 'broadcast a  b c');
    expect(await server.texts('luke', mark)).toEqual(['yoda: a  b c']);
  });

  it('usage: broadcast <text>', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const line of ['broadcast', 'broadcast ', 'broadcast    ']) {
      expect(await server.run(yoda.caller, line), line).toMatchObject({ ok: false, error: 'usage', text: 'Usage: broadcast <text>' });
    }
  });

  it('message text at most maxMessageLength characters; a refused broadcast reaches nobody', async () => {
    const server = await Server.start({ maxMessageLength: 10 });
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    expect(await server.run(yoda.caller, `broadcast ${'x'.repeat(11)}`)).toMatchObject({ ok: false, error: 'too_long' });
    expect(await server.run(yoda.caller, `broadcast ${'y'.repeat(10)}`)).toMatchObject({ ok: true });
    expect(await server.texts('luke', mark)).toEqual([`yoda: ${'y'.repeat(10)}`]);
  });
});
