import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { root } from './server.js';

/**
 * Runs the operator's user tool (`npm run users`) as an operator does: a
 * process of its own (node with tsx as a loader, one process per run), its
 * store from `env`, and `input` on standard input if given. Resolves with
 * its exit code and everything it printed.
 */
export function runUsersTool(env: NodeJS.ProcessEnv, args: string[], input?: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'entries', 'users.ts'), ...args], {
    cwd: root,
    env: { ...process.env, REDIS_URL: '', IM_PASSWORD_COST: '1024', ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  if (input !== undefined) child.stdin!.end(input);
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out })));
}
