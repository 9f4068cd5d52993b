import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../support/server.js';

/*
 * The Worker's fetch handler called directly, as the Workers runtime calls
 * it: a request without cf-connecting-ip (which wrangler dev would fill in,
 * and Cloudflare's edge always sets) is refused before anything else runs.
 */

// The module of Lua scripts and web files the Worker imports, generated as wrangler's [build] does (written whole, then renamed).
execFileSync(process.execPath, ['--import', 'tsx', join(root, 'entries', 'worker-build.ts')], { cwd: root, stdio: 'inherit' });
const { default: worker } = await import('../../entries/worker.js');

// Nothing listens on port 1: a request that got as far as Redis would fail, not pass.
const env = { REDIS_URL: 'redis://127.0.0.1:1' };
const exec = { waitUntil: (promise: Promise<unknown>) => void promise.catch(() => undefined) };

describe('the Worker without a client address', () => {
  it('answers 400 no_client_address to a request without cf-connecting-ip, whatever the route', async () => {
    for (const [method, path] of [['GET', '/healthz'], ['POST', '/login'], ['GET', '/events'], ['GET', '/']]) {
      const res = await worker.fetch(new Request(`https://chat.example.org${path}`, { method }), env, exec);
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toEqual({
        ok: false,
        error: 'no_client_address',
        text: 'Error. The request carries no valid client address (cf-connecting-ip). Please connect through Cloudflare',
      });
    }
  });

  it('answers 400 to an empty or malformed one, and serves the same request with a valid one', async () => {
    const healthz = (address?: string) =>
      worker.fetch(new Request('https://chat.example.org/healthz', { headers: address === undefined ? {} : { 'cf-connecting-ip': address } }), env, exec);
    for (const address of ['', 'unknown', '10.0.0.256', '10.0.0.1,10.0.0.2', '::1:']) {
      expect((await healthz(address)).status, address).toBe(400);
    }
    for (const address of ['198.51.100.4', '2001:db8::1', '::1']) {
      const res = await healthz(address);
      expect(res.status, address).toBe(200);
      expect(await res.json()).toEqual({ ok: true, text: 'ok' });
    }
  });
});
