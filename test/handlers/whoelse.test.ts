import { describe, expect, it } from 'vitest';
import { Server } from './harness.js';

describe('whoelse', () => {
  it('online users other than the caller, one per line', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    await server.login('hans');
    const reply = await server.run(yoda.caller, 'whoelse');
    expect(reply).toMatchObject({ type: 'reply', cmd: 'whoelse', ok: true });
    expect([...(reply.users as string[])].sort()).toEqual(['hans', 'luke']);
    expect(reply.text).toBe((reply.users as string[]).join('\n'));
  });

  it('nobody else online: an empty list', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'whoelse')).toEqual({ type: 'reply', cmd: 'whoelse', ok: true, text: '', users: [] });
  });

  it('offline users are not listed', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.login('hans');
    await server.run(luke.caller, 'logout');
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true, text: 'hans', users: ['hans'] });
  });

  it('users who blocked the caller are left out', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.login('hans');
    await server.run(luke.caller, 'block yoda');
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true, text: 'hans', users: ['hans'] });
  });

  it('blocks are directional: users the caller blocked are still listed', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.login('luke');
    await server.run(yoda.caller, 'block luke');
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true, text: 'luke', users: ['luke'] });
  });

  it('sees users logged in through another replica', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    await server.replica().login('luke');
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ ok: true, users: ['luke'] });
  });

  it('usage: whoelse', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'whoelse luke')).toMatchObject({ ok: false, error: 'usage', text: 'Usage: whoelse' });
  });
});
