import { describe, expect, it } from 'vitest';
import { operator } from '../../handlers/operator.js';
import { parseCursor } from '../../state/cursor.js';
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

  it('an ended session whose session_end was read is refused: from its stored cursor or one past the end', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const token = String(yoda.reply.token);
    await server.run(yoda.caller, 'logout');
    const replay = await server.run(server.caller(), `resume ${token} ${yoda.reply.cursor}`);
    const events = await server.events('yoda', String(replay.cursor));
    const pastEnd = String(events.at(-1)?.id);
    await server.ctx.state.saveCursor('yoda', token, parseCursor(pastEnd)!);
    const ended = { ok: false, error: 'not_logged_in', text: 'Error. Your session has ended. Please log in again' };
    expect(await server.run(server.caller(), `resume ${token}`)).toMatchObject(ended);
    expect(await server.run(server.caller(), `resume ${token} ${pastEnd}`)).toMatchObject(ended);
  });

  it('a removed user is never resumed, even from before the end', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await operator.remove(server.ctx, 'yoda')).toBe(true);
    const reply = await server.run(server.caller(), `resume ${yoda.reply.token} ${yoda.reply.cursor}`);
    expect(reply).toMatchObject({ ok: false, error: 'not_logged_in', text: 'Error. You are not logged in' });
  });

  it('usage: resume <token> [<cursor>]', async () => {
    const server = await Server.start();
    expect(await server.run(server.caller(), 'resume')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: resume <token> [<cursor>]' });
    expect(await server.run(server.caller(), 'resume a b c')).toMatchObject({ ok: false, error: 'usage' });
  });
});
