import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../handlers/types.js';
import { loadScripts } from '../../state/scripts.js';
import { flags } from '../../entries/args.js';
import { workerFilesModule } from '../../entries/worker-build.js';
import { workerOptions, workerVars } from '../../entries/worker-config.js';
import { root } from '../support/server.js';
import { quietWranglerEnv, wranglerBin } from './wrangler.js';

describe('the Worker build', () => {
  it('builds with wrangler deploy --dry-run, carrying the Lua scripts and the web client', async () => {
    const out = mkdtempSync(join(tmpdir(), 'im-worker-build-'));
    try {
      await promisify(execFile)(process.execPath, [wranglerBin, 'deploy', '--dry-run', '--outdir', join(out, 'dist')], {
        cwd: root,
        env: quietWranglerEnv(out),
        timeout: 60_000,
      });
      const bundle = readFileSync(join(out, 'dist', 'worker.js'), 'utf8');
      for (const script of loadScripts()) expect(bundle).toContain(`"${script.name}"`);
      expect(bundle).toContain('"/assets/app.js"');
      // The embedded store is the Node entry's; the Worker always speaks to a real Redis.
      expect(bundle).not.toContain('node_modules/ioredis-mock/');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('generates the scripts from state/lua as the Node server loads them', async () => {
    const module = workerFilesModule();
    const scripts = JSON.parse(/^export const scripts = (.*);$/m.exec(module)![1]);
    expect(scripts).toEqual(loadScripts());
  });
});

describe('the Worker configuration', () => {
  it('uses the Node server environment names, and its defaults', () => {
    const nodeNames = new Set(flags.map((f) => f.env));
    for (const name of Object.keys(workerVars)) {
      if (name !== 'IM_BLOCK_DURATION' && name !== 'IM_TIMEOUT') expect(nodeNames).toContain(name);
    }
    expect(workerOptions({ REDIS_URL: 'redis://r:6379' })).toEqual({
      redis: 'redis://r:6379',
      pollInterval: 1000,
      logLevel: 'info',
      // The Worker only checks passwords; it never remakes a hash (entries/worker-config.ts).
      config: { ...defaultConfig, rehashPasswords: false },
    });
  });

  it('takes the vars as strings or numbers, and names a wrong one', () => {
    const options = workerOptions({ REDIS_URL: 'redis://r', IM_BLOCK_DURATION: 5, IM_TIMEOUT: '9', IM_COMMAND_RATE: '0', IM_POLL_INTERVAL: '250' });
    expect(options.config).toMatchObject({ blockDuration: 5, timeout: 9, commandRate: 0 });
    expect(options.pollInterval).toBe(250);
    expect(() => workerOptions({})).toThrow(/REDIS_URL is not set/);
    expect(() => workerOptions({ REDIS_URL: 'redis://a:1,redis://b:2' })).toThrow(/not a cluster/);
    expect(() => workerOptions({ REDIS_URL: 'redis://r', IM_TIMEOUT: '0' })).toThrow(/IM_TIMEOUT/);
    expect(() => workerOptions({ REDIS_URL: 'redis://r', IM_MAX_MESSAGE: 'lots' })).toThrow(/IM_MAX_MESSAGE/);
    expect(() => workerOptions({ REDIS_URL: 'redis://r', IM_LOG_LEVEL: 'loud' })).toThrow(/IM_LOG_LEVEL/);
  });
});
