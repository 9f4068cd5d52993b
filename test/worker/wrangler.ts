import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/ports.js';
import { root } from '../support/server.js';

export const wranglerBin = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');

/**
 * Wrangler with nothing sent anywhere: no usage metrics, no error reports, no
 * update check (it runs with the banner), no download of the `cf` request
 * properties; its config and logs in a temp dir instead of the home dir.
 */
export function quietWranglerEnv(home: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_SEND_ERROR_REPORTS: 'false',
    WRANGLER_HIDE_BANNER: 'true',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    XDG_CONFIG_HOME: home,
    WRANGLER_LOG_PATH: join(home, 'logs'),
    NO_COLOR: '1',
  };
}

export interface RunningWorker {
  base: string;
  /** Everything wrangler and the Worker printed so far. */
  output(): string;
  /** Stops wrangler and the workerd processes it started (the whole process group), and waits until they are gone. */
  stop(): Promise<void>;
}

const groups = new Set<number>();
process.once('exit', () => {
  for (const pgid of groups) signalGroup(pgid, 'SIGKILL');
});

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // no process left in the group
  }
}

/**
 * Starts `wrangler dev` (local workerd, on 127.0.0.1 only, scheduled events
 * on `/__scheduled`) for wrangler.toml's Worker, with `vars` as Worker vars.
 * Wrangler runs in a process group of its own, so stop() reaches workerd too;
 * on Linux `setpriv --pdeathsig` kills wrangler should this process die.
 */
export async function startWorker(vars: Record<string, string>): Promise<RunningWorker> {
  const home = mkdtempSync(join(tmpdir(), 'im-wrangler-'));
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const args = [
    wranglerBin,
    'dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--inspector-ip', '127.0.0.1',
    '--inspector-port', String(inspectorPort),
    '--test-scheduled',
    '--persist-to', join(home, 'state'),
    '--show-interactive-dev-session=false',
    ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
  ];
  const setpriv = process.platform === 'linux' && existsSync('/usr/bin/setpriv');
  const child: ChildProcess = spawn(
    setpriv ? '/usr/bin/setpriv' : process.execPath,
    setpriv ? ['--pdeathsig', 'SIGKILL', '--', process.execPath, ...args] : args,
    { cwd: root, env: quietWranglerEnv(home), detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pgid = child.pid!;
  groups.add(pgid);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    signalGroup(pgid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    // workerd may outlive wrangler by a moment: wait for the whole group.
    while (signalGroup(pgid, 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    signalGroup(pgid, 'SIGKILL');
    while (signalGroup(pgid, 0)) await new Promise((r) => setTimeout(r, 20));
    groups.delete(pgid);
    rmSync(home, { recursive: true, force: true });
  };

  const base = `http://127.0.0.1:${port}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`wrangler dev did not get ready:\n${output}`)), 60_000);
      const check = () => {
        if (output.includes(`Ready on ${base}`)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`wrangler dev exited during start-up:\n${output}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, output: () => output, stop };
}

export interface Answer {
  status: number;
  body: Record<string, any>;
}

/** The HTTP long-poll API (SPEC section 4) as curl uses it. */
export function httpApi(base: string) {
  const call = async (path: string, init: RequestInit = {}): Promise<Answer> => {
    const response = await fetch(base + path, init);
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  return {
    login: (username: string, password: string, headers: Record<string, string> = {}) =>
      call('/login', {
        method: 'POST',
        body: JSON.stringify({ username, password }),
        headers: { 'content-type': 'application/json', ...headers },
      }),
    command: (token: string, line: string) => call('/command', { method: 'POST', body: line, headers: bearer(token) }),
    events: (token: string, query = 'wait=0') => call(`/events?${query}`, { headers: bearer(token) }),
    logout: (token: string) => call('/logout', { method: 'POST', headers: bearer(token) }),
    /** Runs the Worker's scheduled handler, as a Cron Trigger would (wrangler dev --test-scheduled). */
    scheduled: async () => (await fetch(`${base}/__scheduled?cron=*+*+*+*+*`)).text(),
  };
}
