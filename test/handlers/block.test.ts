import { describe, expect, it } from 'vitest';
import { Server } from './harness.js';
import { fingerprint } from '../support/fingerprints.js';

describe('block <user>', () => {
  it('<user> is blocked', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    expect(await server.run(luke.caller, 'block yoda')).toEqual({ type: 'reply', cmd: 'block', ok: true, text: 'yoda is blocked' });
  });

  it('<user> is not told', async () => {
    const server = await Server.start();
    await server.login('yoda');
    const luke = await server.login('luke');
    const mark = await server.mark('yoda');
    await server.run(luke.caller, 'block yoda');
    expect(await server.events('yoda', mark)).toEqual([]);
  });

  it('<user> can no longer message the caller', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    expect(await server.run(yoda.caller, 'message luke hi')).toMatchObject({
      ok: false,
      error: 'blocked',
      text: 'Your message could not be delivered as the recipient has blocked you',
    });
  });

  it('<user> can no longer broadcast to the caller', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const mark = await server.mark('luke');
    await server.run(yoda.caller, 'broadcast hi all');
    expect(await server.texts('luke', mark)).toEqual([]);
  });

  it('<user> can no longer see the presence of the caller', async () => {
    const server = await Server.start();
    await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const mark = await server.mark('yoda');
    await server.run(luke.caller, 'logout');
    await server.login('luke');
    expect(await server.texts('yoda', mark)).toEqual([]);
  });

  it('<user> no longer sees the caller in whoelse', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    expect(await server.run(yoda.caller, 'whoelse')).toMatchObject({ users: [] });
  });

  it('<user> can no longer start a private chat with the caller', async () => {
    const server = await Server.start();
    const yoda = await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(yoda.caller, `p2p 4501 ${fingerprint(1)}`);
    await server.run(luke.caller, 'block yoda');
    expect(await server.run(yoda.caller, 'startprivate luke')).toMatchObject({
      ok: false,
      error: 'blocked',
      text: 'Error. luke has blocked you',
    });
  });

  it('self: Error. Cannot block self', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    expect(await server.run(luke.caller, 'block luke')).toEqual({
      type: 'reply',
      cmd: 'block',
      ok: false,
      error: 'self',
      text: 'Error. Cannot block self',
    });
  });

  it('unknown: Error. Invalid user', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    for (const target of ['vader', 'Yoda', 'yo{da}', 'x'.repeat(33)]) {
      expect(await server.run(luke.caller, `block ${target}`), target).toEqual({
        type: 'reply',
        cmd: 'block',
        ok: false,
        error: 'invalid_user',
        text: 'Error. Invalid user',
      });
    }
  });

  it('again: Error. <user> is already blocked', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    expect(await server.run(luke.caller, 'block yoda')).toEqual({
      type: 'reply',
      cmd: 'block',
      ok: false,
      error: 'already_blocked',
      text: 'Error. yoda is already blocked',
    });
  });

  it('an offline user can be blocked', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    expect(await server.run(luke.caller, 'block leia')).toMatchObject({ ok: true, text: 'leia is blocked' });
  });

  it('blocks survive logout', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    await server.run(luke.caller, 'logout');
    const again = await server.login('luke');
    expect(await server.run(again.caller, 'block yoda')).toMatchObject({ error: 'already_blocked' });
    const yoda = await server.login('yoda');
    expect(await server.run(yoda.caller, 'message luke hi')).toMatchObject({ error: 'blocked' });
  });

  it('blocks survive a server restart and hold on every replica', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const other = server.replica();
    const yoda = await other.login('yoda');
    expect(await other.run(yoda.caller, 'message luke hi')).toMatchObject({ error: 'blocked' });
  });

  it('blocks are directional: the blocker still reaches <user>', async () => {
    const server = await Server.start();
    await server.login('yoda');
    const luke = await server.login('luke');
    await server.run(luke.caller, 'block yoda');
    const mark = await server.mark('yoda');
    expect(await server.run(luke.caller, 'message yoda hi')).toMatchObject({ ok: true });
    expect(await server.texts('yoda', mark)).toEqual(['luke: hi']);
  });

  it('usage: block <user>', async () => {
    const server = await Server.start();
    const luke = await server.login('luke');
    for (const line of ['block', 'block yoda hans', 'block ']) {
      expect(await server.run(luke.caller, line), line).toMatchObject({ ok: false, error: 'usage', text: 'Usage: block <user>' });
    }
  });
});
