import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's chromium, headless, for the web client's tests: started by us
 * (never downloaded), driven by playwright-core over the DevTools protocol,
 * stopped by its PID, its fresh profile directory removed afterwards.
 */
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const flags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--remote-debugging-port=0',
];

const SETPRIV = '/usr/bin/setpriv';

/** Browsers not closed yet: killed, and their profiles removed, if the test process exits first. */
const open = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, profile] of open) {
    child.kill('SIGKILL');
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
});

export interface RunningBrowser {
  browser: Browser;
  pid: number;
  /** Disconnects, stops the process (SIGTERM, SIGKILL after 5 s) and removes its profile. */
  close(): Promise<void>;
}

export async function startBrowser(): Promise<RunningBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'im-chromium-'));
  const args = [...flags, `--user-data-dir=${profile}`, 'about:blank'];
  // setpriv --pdeathsig: the kernel kills chromium if this test process dies
  // however it dies (setpriv and the /usr/bin/chromium wrapper both exec, so
  // the PID is chromium's own).
  const child: ChildProcess =
    process.platform === 'linux' && existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', '--', chromiumPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(chromiumPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  open.set(child, profile);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chromium did not start:\n${output}`)), 30_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      output = (output + chunk).slice(-8000);
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code}) during start-up:\n${output}`));
    });
  }).catch(async (err) => {
    child.kill('SIGKILL');
    await exited;
    open.delete(child);
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    throw err;
  });

  const browser = await chromium.connectOverCDP(endpoint);
  const pid = child.pid!;
  return {
    browser,
    pid,
    async close() {
      await browser.close().catch(() => undefined);
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGTERM');
        const force = setTimeout(() => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }, 5000);
        await exited;
        clearTimeout(force);
      }
      open.delete(child);
      await removeProfile(profile);
    },
  };
}

/**
 * Removes a profile directory. Chromium's helper processes outlive the main
 * one by a moment and may still write into it (ENOTEMPTY), so this tries
 * again for up to 15 s before giving up.
 */
async function removeProfile(profile: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmSync(profile, { recursive: true, force: true });
      return;
    } catch (err) {
      if (attempt >= 75) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
