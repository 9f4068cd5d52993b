import { describe, expect, it } from 'vitest';
import { Server } from './harness.js';

describe('resume <token> [<cursor>]', () => {
  it('re-attaches a live session to a new connection', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const token = String(yoda.reply.token);
    const caller = server.caller('10.0.0.77');
    const reply = await server.run(caller, `resume ${token}`);
    expect(reply).toMatchObject({ type: 'reply', cmd: 'resume', ok: true, user: 'yoda', token });
    caller.session = { user: 'yoda', token };
    expect(await server.run(caller, 'whoelse')).toMatchObject({ ok: true });
  });

  it('through another replica too', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const other = server.replica();
    expect(await other.run(other.caller(), `resume ${yoda.reply.token}`)).toMatchObject({ ok: true, user: 'yoda' });
  });

  it('replays every event after <cursor>: nothing is lost', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    const cursor = await server.mark('yoda');
    await server.run(luke.caller, 'message yoda one');
    await server.run(luke.caller, 'message yoda two');
    const reply = await server.run(server.caller(), `resume ${yoda.reply.token} ${cursor}`);
    expect(reply).toMatchObject({ ok: true, cursor: String(cursor) });
    expect(await server.texts('yoda', String(reply.cursor))).toEqual(['luke: one', 'luke: two']);
  });

  it('no login notification is broadcast', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    const mark = await server.mark('luke');
    expect(await server.run(server.caller(), `resume ${yoda.reply.token}`)).toMatchObject({ ok: true });
    expect(await server.events('luke', mark)).toEqual([]);
  });

  it('an unknown token is refused: not_logged_in', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    for (const token of ['yoda:forged', 'nobody', `${yoda.reply.token}x`]) {
      expect(await server.run(server.caller(), `resume ${token}`), token).toMatchObject({ ok: false, error: 'not_logged_in' });
    }
  });

  it('a session that ended while the client was away resumes up to its session_end, and no further commands', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.run(yoda.caller, 'logout');
    const caller = server.caller();
    const reply = await server.run(caller, `resume ${yoda.reply.token} ${yoda.reply.cursor}`);
    expect(reply).toMatchObject({ ok: true });
    const events = await server.events('yoda', String(reply.cursor));
    expect(events.at(-1)).toMatchObject({ type: 'session_end', reason: 'logout' });
    caller.session = { user: 'yoda', token: String(yoda.reply.token) };
    expect(await server.run(caller, 'whoelse')).toMatchObject({ ok: false, error: 'not_logged_in' });
  });

  it('usage: resume <token> [<cursor>]', async () => {
    const server = await Server.start();
    expect(await server.run(server.caller(), 'resume')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: resume <token> [<cursor>]' });
    expect(await server.run(server.caller(), 'resume a b c')).toMatchObject({ ok: false, error: 'usage' });
  });
});
