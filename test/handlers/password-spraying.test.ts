import { describe, expect, it } from 'vitest';
import { scryptPasswords } from '../../handlers/passwords.js';
import { importUsers } from '../../handlers/users.js';
import { Server } from './harness.js';

/**
 * Wrong passwords count against the address too (SPEC section 2 counts them
 * per account): one address trying a password over many accounts, each
 * below its own limit, is locked out. The two locks stay apart, and the
 * SPEC's texts are unchanged.
 */

const welcome = 'Welcome to the greatest messaging application ever!';
const invalidPassword = 'Invalid Password. Please try again';
const accounts = Array.from({ length: 10 }, (_v, k) => `crew${k}`);

async function withCrew(config: Parameters<typeof Server.start>[0] = {}): Promise<Server> {
  const server = await Server.start({ blockDuration: 60, ...config });
  await importUsers(server.ctx, accounts.map((user) => ({ user, password: 'right' })));
  return server;
}

describe('password spraying', () => {
  it('one password tried over ten accounts from one address locks the address, not the accounts', async () => {
    const server = await withCrew();
    const address = '10.1.0.1';
    for (const user of accounts.slice(0, 9)) {
      expect(await server.attempt(user, 'summer2026', address)).toMatchObject({ ok: false, error: 'invalid_password', text: invalidPassword });
    }
    const tenth = await server.attempt(accounts[9], 'summer2026', address);
    expect(tenth).toMatchObject({ ok: false, error: 'invalid_password', text: invalidPassword, locked: 'address' });

    // The address is refused, even with a right password, through any replica.
    expect(await server.attempt('crew0', 'right', address)).toMatchObject({ ok: false, error: 'address_blocked' });
    expect(await server.replica().attempt('yoda', 'wise', address)).toMatchObject({ ok: false, error: 'address_blocked' });
    // No account was locked: their owners log in from elsewhere.
    for (const user of accounts) expect(await server.attempt(user, 'right', '10.1.0.2'), user).toMatchObject({ ok: true, text: welcome });

    server.clock.advance(60);
    expect(await server.attempt('yoda', 'wise', address)).toMatchObject({ ok: true, text: welcome });
  });

  it('an IPv6 host rotating through its /64 is one address', async () => {
    const server = await withCrew();
    for (const [k, user] of accounts.entries()) await server.attempt(user, 'guess', `2001:db8:7:1::${(k + 1).toString(16)}`);
    expect(await server.attempt('yoda', 'wise', '2001:db8:7:1:ffff:1:2:3')).toMatchObject({ ok: false, error: 'address_blocked' });
    expect(await server.attempt('yoda', 'wise', '2001:db8:7:2::1')).toMatchObject({ ok: true, text: welcome });
  });

  it('the account lock is apart: three wrong passwords for one account lock it, not the address', async () => {
    const server = await withCrew();
    const address = '10.1.0.3';
    await server.attempt('crew0', 'a', address);
    await server.attempt('crew0', 'b', address);
    expect(await server.attempt('crew0', 'c', address)).toMatchObject({ error: 'invalid_password', locked: 'account' });
    expect(await server.attempt('crew1', 'right', address)).toMatchObject({ ok: true, text: welcome });
  });

  it('--address-failures 0 counts no wrong password against the address', async () => {
    const server = await withCrew({ addressFailures: 0 });
    const address = '10.1.0.4';
    for (const user of accounts) expect(await server.attempt(user, 'guess', address)).not.toHaveProperty('locked');
    expect(await server.attempt('yoda', 'wise', address)).toMatchObject({ ok: true, text: welcome });
  });
});

describe('password hashes made at a lower cost', () => {
  const cheap = scryptPasswords(1024);
  const stronger = scryptPasswords(4096);

  async function withStrongerServer(rehashPasswords: boolean) {
    const server = await Server.start({ rehashPasswords });
    // The server now hashes at 4096; the sample users' hashes were made at 1024.
    Object.assign(server.ctx, { passwords: stronger });
    return server;
  }

  it('are remade at the cost of the server at the next successful login, and still take the same password', async () => {
    const server = await withStrongerServer(true);
    const before = (await server.ctx.state.loginRecord('yoda'))!.hash;
    expect(before).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(await server.attempt('yoda', 'nope')).toMatchObject({ error: 'invalid_password' });
    expect((await server.ctx.state.loginRecord('yoda'))!.hash).toBe(before);

    expect(await server.attempt('yoda', 'wise')).toMatchObject({ ok: true, text: welcome });
    const after = (await server.ctx.state.loginRecord('yoda'))!.hash;
    expect(after).toMatch(/^scrypt\$4096\$8\$1\$/);
    expect(stronger.outdated(after)).toBe(false);
    expect(await stronger.verify('wise', after)).toBe(true);
    expect(await stronger.verify('wrong', after)).toBe(false);
  });

  it('are kept as they are with --rehash-passwords no (benchmarks that seed cheap hashes)', async () => {
    const server = await withStrongerServer(false);
    const before = (await server.ctx.state.loginRecord('luke'))!.hash;
    expect(await server.attempt('luke', 'sunrise')).toMatchObject({ ok: true, text: welcome });
    expect((await server.ctx.state.loginRecord('luke'))!.hash).toBe(before);
  });

  it('a reset that raced with the login keeps its new password', async () => {
    const server = await Server.start();
    const old = (await server.ctx.state.loginRecord('hans'))!.hash;
    expect(await server.ctx.state.setPassword('hans', await cheap.hash('newer'))).toBe(true);
    // The login checked `old`; the store holds the reset's hash now.
    expect(await server.ctx.state.replacePasswordHash('hans', old, await stronger.hash('falcon'))).toBe(false);
    expect(await cheap.verify('newer', (await server.ctx.state.loginRecord('hans'))!.hash)).toBe(true);
  });

  it("the server's own cost, OWASP's N=2^17 with r=8 (128 MiB a derivation), hashes and verifies", async () => {
    const real = scryptPasswords();
    const hash = await real.hash('wise');
    expect(hash).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect(await real.verify('wise', hash)).toBe(true);
    expect(await real.verify('wiser', hash)).toBe(false);
    expect(real.outdated(hash)).toBe(false);
    expect(real.outdated(await cheap.hash('x'))).toBe(true);
  }, 30_000);

  it('outdated: lower N, r, p or key length than the server makes; never for its own', async () => {
    expect(stronger.outdated(await cheap.hash('x'))).toBe(true);
    expect(stronger.outdated(await stronger.hash('x'))).toBe(false);
    expect(cheap.outdated(await stronger.hash('x'))).toBe(false);
    expect(stronger.outdated('scrypt$4096$1$1$c2FsdA==$a2V5')).toBe(true);
  });
});
