import { describe, expect, it } from 'vitest';
import { parseCursor } from '../../state/cursor.js';
import { Server } from './harness.js';

describe('stored-message backlog', () => {
  it('a login after more offline messages than the cap reports gap: true and keeps the newest', async () => {
    const server = await Server.start({ backlog: 3 });
    const yoda = await server.login('yoda');
    for (let k = 1; k <= 5; k++) expect(await server.run(yoda.caller, `message luke m${k}`)).toMatchObject({ ok: true });
    const luke = await server.login('luke');
    expect(luke.reply).toMatchObject({ ok: true, gap: true });
    const page = await server.ctx.state.read('luke', parseCursor(String(luke.reply.cursor))!.inbox, 100);
    expect(page.gap).toBe(true);
    expect(await server.texts('luke', String(luke.reply.cursor))).toEqual(['yoda: m3', 'yoda: m4', 'yoda: m5']);
  });

  it('no gap when the offline messages fit', async () => {
    const server = await Server.start({ backlog: 3 });
    const yoda = await server.login('yoda');
    for (let k = 1; k <= 3; k++) await server.run(yoda.caller, `message luke m${k}`);
    const luke = await server.login('luke');
    expect(luke.reply).not.toHaveProperty('gap');
    const page = await server.ctx.state.read('luke', parseCursor(String(luke.reply.cursor))!.inbox, 100);
    expect(page.gap).toBe(false);
    expect(await server.texts('luke', String(luke.reply.cursor))).toEqual(['yoda: m1', 'yoda: m2', 'yoda: m3']);
  });

  it('a later login with too many messages since the last logout reports gap: true', async () => {
    const server = await Server.start({ backlog: 3 });
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'logout');
    for (let k = 1; k <= 4; k++) await server.run(yoda.caller, `message luke m${k}`);
    const again = await server.login('luke');
    expect(again.reply).toMatchObject({ ok: true, gap: true });
    expect(await server.texts('luke', String(again.reply.cursor))).toEqual(['yoda: m2', 'yoda: m3', 'yoda: m4']);
  });

  it('an online client whose cursor fell behind is told gap: true', async () => {
    const server = await Server.start({ backlog: 3 });
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    const cursor = await server.mark('luke');
    for (let k = 1; k <= 4; k++) await server.run(yoda.caller, `message luke m${k}`);
    const page = await server.ctx.state.read('luke', parseCursor(cursor)!.inbox, 100);
    expect(page.gap).toBe(true);
    expect(page.events).toHaveLength(3);
    const poll = await server.ctx.state.poll('luke', String(luke.reply.token), parseCursor(cursor), 100);
    expect(poll).toMatchObject({ ok: true, inbox: { gap: true } });
    const resumed = await server.run(server.caller(), `resume ${luke.reply.token} ${cursor}`);
    expect(resumed).toMatchObject({ ok: true, gap: true });
  });
});
