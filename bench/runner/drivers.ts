import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Op, Requests, Response, Target } from '../protocol.js';
import { track, type Child } from './processes.js';

const AGENT = fileURLToPath(new URL('../driver/agent.ts', import.meta.url));
/** The bench's own checkout, where `tsx` is installed. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A driver process, asked to do one thing at a time; every request has a deadline. */
export class DriverProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  private constructor(
    readonly index: number,
    readonly process: Child,
  ) {
    process.child.on('message', (message: Response) => {
      const w = this.waiting.get(message.id);
      if (!w) return;
      this.waiting.delete(message.id);
      clearTimeout(w.timer);
      if (message.ok) w.resolve(message.result);
      else w.reject(new Error(`driver ${this.index}: ${message.error}`));
    });
    void process.exited.then(() => {
      for (const [id, w] of this.waiting) {
        clearTimeout(w.timer);
        w.reject(new Error(`driver ${this.index} exited:\n${process.output()}`));
        this.waiting.delete(id);
      }
    });
  }

  /**
   * Forks a driver (TypeScript through tsx: the bench is a tool; the server
   * it measures is the built one). It loads while the server starts; init()
   * then tells it where the server is.
   */
  static fork(index: number): DriverProcess {
    const child = fork(AGENT, [], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    return new DriverProcess(index, track(`driver ${index}`, child));
  }

  async init(target: Target, runId: string): Promise<void> {
    await this.call('init', { target, runId, driverIndex: this.index }, 60_000);
  }

  get pid(): number {
    return this.process.pid;
  }

  call<K extends Op>(op: K, args: Requests[K][0], timeoutMs: number): Promise<Requests[K][1]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`driver ${this.index}: ${op} got no answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.process.child.send({ id, op, args });
    });
  }

  stop(): Promise<void> {
    return this.process.stop(3000);
  }
}
