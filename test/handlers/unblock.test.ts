import { describe, expect, it } from 'vitest';
import { Server } from './harness.js';

describe('unblock <user>', () => {
  it('<user> is unblocked', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    expect(await server.run(luke.caller, 'unblock yoda')).toEqual({ type: 'reply', cmd: 'unblock', ok: true, text: 'yoda is unblocked' });
  });

  it('reverses block: <user> can message, broadcast to and see the caller again', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    await server.run(luke.caller, 'unblock yoda');
    const lukeMark = await server.mark('luke');
    expect(await server.run(yoda.caller, 'message luke hi')).toMatchObject({ ok: true });
    expect(await server.run(yoda.caller, 'broadcast all')).toMatchObject({ ok: true, text: '' });
    expect(await server.texts('luke', lukeMark)).toEqual(['yoda: hi', 'yoda: all']);
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ users: ['luke'] });
    const yodaMark = await server.mark('yoda');
    await server.run(luke.caller, 'logout');
    expect(await server.texts('yoda', yodaMark)).toEqual(['luke logged out']);
  });

  it('not blocked: Error. <user> was not blocked', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    expect(await server.run(luke.caller, 'unblock yoda')).toEqual({
      type: 'reply',
      cmd: 'unblock',
      ok: false,
      error: 'not_blocked',
      text: 'Error. yoda was not blocked',
    });
    await server.run(luke.caller, 'block yoda');
    await server.run(luke.caller, 'unblock yoda');
    expect(await server.run(luke.caller, 'unblock yoda')).toMatchObject({ error: 'not_blocked', text: 'Error. yoda was not blocked' });
  });

  it('blocks are directional: a block by <user> is not the caller\'s to lift', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    expect(await server.run(yoda.caller, 'unblock luke')).toMatchObject({ error: 'not_blocked', text: 'Error. luke was not blocked' });
    expect(await server.run(yoda.caller, 'message luke hi')).toMatchObject({ error: 'blocked' });
  });

  it('self: Error. Cannot unblock self', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    expect(await server.run(luke.caller, 'unblock luke')).toEqual({
      type: 'reply',
      cmd: 'unblock',
      ok: false,
      error: 'self',
      text: 'Error. Cannot unblock self',
    });
  });

  it('unknown: Error. Invalid user', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    for (const target of ['vader', 'Yoda', 'yo{da}']) {
      expect(await server.run(luke.caller, `unblock ${target}`), target).toEqual({
        type: 'reply',
        cmd: 'unblock',
        ok: false,
        error: 'invalid_user',
        text: 'Error. Invalid user',
      });
    }
  });

  it('usage: unblock <user>', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    for (const line of ['unblock', 'unblock yoda hans']) {
      expect(await server.run(luke.caller, line), line).toMatchObject({ ok: false, error: 'usage', text: 'Usage: unblock <user>' });
    }
  });
});
