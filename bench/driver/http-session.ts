import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Target } from '../protocol.js';
import type { WireObject } from './tcp-session.js';

/** Keep-alive sockets shared by every HTTP session of this driver process. */
const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096 });

interface HttpAnswer {
  status: number;
  body: WireObject;
}

/**
 * One request. A keep-alive socket the server closes just as a request goes
 * out on it fails with ECONNRESET before the server read anything; Node's
 * documented answer (`request.reusedSocket`) is to send it again, once, on a
 * fresh socket. Any other failure is reported as `connection_error <errno code>`.
 */
async function call(target: Target, method: string, path: string, body: string | null, headers: Record<string, string>, timeoutMs: number): Promise<HttpAnswer> {
  const first = await attempt(target, method, path, body, headers, timeoutMs);
  return first.retry ? (await attempt(target, method, path, body, headers, timeoutMs)).answer : first.answer;
}

function attempt(target: Target, method: string, path: string, body: string | null, headers: Record<string, string>, timeoutMs: number): Promise<{ answer: HttpAnswer; retry: boolean }> {
  return new Promise((settle) => {
    const resolve = (answer: HttpAnswer) => settle({ answer, retry: false });
    const req = request(
      { host: target.host, port: target.httpPort, method, path, agent, headers: body === null ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          clearTimeout(timer);
          let parsed: WireObject;
          try {
            parsed = JSON.parse(text) as WireObject;
          } catch {
            parsed = { type: 'unparsable', text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', () => undefined);
      },
    );
    const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const answer = { status: 0, body: { type: 'reply', ok: false, error: `connection_error ${err.code ?? err.message}`, text: err.message } };
      settle({ answer, retry: req.reusedSocket && err.code === 'ECONNRESET' });
    });
    if (body !== null) req.write(body);
    req.end();
  });
}

/**
 * A client session over the public HTTP long-poll API: `POST /login`,
 * `POST /command`, and a parked `GET /events?after=<cursor>` that is asked
 * again with the cursor of each answer (the cursor is opaque: kept and
 * passed back, never looked into).
 */
export class HttpSession {
  token = '';
  cursor = '';
  polling = false;
  events = 0;
  presence = 0;
  gaps = 0;
  ended = false;
  onEvent: (event: WireObject, at: number) => void = () => undefined;
  private stopped = false;

  constructor(
    readonly target: Target,
    readonly user: string,
  ) {}

  async login(password: string, timeoutMs: number): Promise<WireObject> {
    const answer = await call(this.target, 'POST', '/login', JSON.stringify({ username: this.user, password }), { 'content-type': 'application/json' }, timeoutMs);
    if (answer.body.ok === true && typeof answer.body.token === 'string') {
      this.token = answer.body.token;
      if (typeof answer.body.cursor === 'string') this.cursor = answer.body.cursor;
    }
    return answer.body;
  }

  async command(line: string, timeoutMs = 60_000): Promise<WireObject> {
    const started = performance.now();
    const answer = await call(this.target, 'POST', '/command', line, { 'content-type': 'text/plain', authorization: `Bearer ${this.token}` }, timeoutMs);
    const at = performance.now();
    answer.body.at = at;
    answer.body.latencyMs = at - started;
    if (answer.body.ok === undefined) answer.body.ok = false;
    return answer.body;
  }

  /** Parks long-polls one after another until stop(); each answer's events go to onEvent. */
  startPolling(waitSeconds: number): void {
    if (this.polling) return;
    this.polling = true;
    void this.pollLoop(waitSeconds);
  }

  stop(): void {
    this.stopped = true;
  }

  private async pollLoop(waitSeconds: number): Promise<void> {
    let failures = 0;
    while (!this.stopped && !this.ended) {
      const after = this.cursor ? `after=${encodeURIComponent(this.cursor)}&` : '';
      const answer = await call(this.target, 'GET', `/events?${after}wait=${waitSeconds}`, null, { authorization: `Bearer ${this.token}` }, (waitSeconds + 30) * 1000);
      if (this.stopped) return;
      if (answer.status !== 200) {
        if (answer.status === 401) {
          this.ended = true;
          return;
        }
        // A refused or failed poll is retried a bounded number of times, with a pause, so a dead server ends the loop.
        if (++failures > 20) return;
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      failures = 0;
      const at = performance.now();
      const body = answer.body as { events?: WireObject[]; cursor?: string; gap?: boolean };
      if (body.gap) this.gaps++;
      for (const event of body.events ?? []) {
        this.events++;
        if (event.type === 'presence') this.presence++;
        if (event.type === 'session_end') this.ended = true;
        this.onEvent(event, at);
      }
      if (typeof body.cursor === 'string') this.cursor = body.cursor;
    }
  }
}
