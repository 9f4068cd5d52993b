import type { Request, Requests, Response } from '../protocol.js';
import { Driver } from './driver.js';
import { closedLoop, openLoop, probe, slowReader } from './load.js';

/**
 * A driver process, run by the runner with an IPC channel: it holds client
 * sessions to the server under test and runs the load the runner asks for,
 * one request at a time. It knows the server only by its TCP and HTTP ports.
 */
let driver: Driver | null = null;

function need(): Driver {
  if (!driver) throw new Error('driver not initialised');
  return driver;
}

const handlers: { [K in keyof Requests]: (args: Requests[K][0]) => Promise<Requests[K][1]> } = {
  async init(args) {
    driver = Driver.fromInit(args);
    return { pid: process.pid };
  },
  login: (args) => need().login(args),
  logout: (args) => need().logout(args),
  closedLoop: (args) => closedLoop(need(), args),
  openLoop: (args) => openLoop(need(), args),
  broadcast: (args) => need().broadcast(args),
  probe: (args) => probe(need(), args),
  slowReader: (args) => slowReader(need(), args),
  async stats() {
    return need().stats();
  },
};

function answer(response: Response): void {
  process.send?.(response);
}

process.on('message', (message: Request) => {
  const handler = handlers[message.op] as (args: unknown) => Promise<unknown>;
  if (!handler) {
    answer({ id: message.id, ok: false, error: `unknown op ${String(message.op)}` });
    return;
  }
  handler(message.args).then(
    (result) => answer({ id: message.id, ok: true, result }),
    (err: unknown) => answer({ id: message.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

// The runner going away ends the driver, whatever state it is in.
process.on('disconnect', () => process.exit(0));
