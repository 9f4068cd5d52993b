// The long-poll loop: always passes the last cursor it got as `after`, so
// nothing is lost or repeated across network errors and replica restarts.
//
// An outage is a failed poll (network error, an answer that is not the
// server's, a 5xx) or a replica saying it is shutting down. It is reported
// once, when it starts, and polls are retried from the same cursor with
// backoff. The first poll after a failure asks for wait=0, so the server
// answers at once and the page can say it is back as soon as a server
// answers, not at the next event.

import * as api from './api.js';

const firstRetryMs = 250;
const longestRetryMs = 3000;

/**
 * Milliseconds to wait before retry number `failures` (1, 2, ...):
 * 250 ms doubling to at most 3 s, each drawn between half and all of that
 * (jitter, so that the pages a replica dropped do not all come back at once).
 */
export function backoff(failures, random = Math.random) {
  const ceiling = Math.min(firstRetryMs * 2 ** (failures - 1), longestRetryMs);
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

/** A bounded set of recently seen event ids (ids are opaque: only equality is used). */
class RecentIds {
  constructor(limit) {
    this.limit = limit;
    this.ids = new Set();
  }
  /** True the first time an id is offered. */
  fresh(id) {
    if (typeof id !== 'string') return true;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

/** A replica going away says so with a session_end that does not end the session. */
const isShutdown = (event) => event.type === 'session_end' && event.reason === 'shutdown';

/**
 * Starts polling after `cursor`. Callbacks:
 * - onEvents(events, cursor): new events, then the cursor to keep;
 * - onConnection(up, text): an outage started (with the server's words for
 *   it, if it gave any) or ended; once each per outage;
 * - onEnded(text): the session is over (401); polling has stopped.
 * Returns { stop() }.
 */
export function startPoller({ token, cursor, waitSeconds = 25, onEvents, onConnection, onEnded }) {
  let stopped = false;
  let failures = 0;
  let controller = null;
  let retryNow = null;
  const seen = new RecentIds(2000);

  const pause = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        retryNow = null;
        resolve();
      }
      retryNow = done;
    });
  // The browser says the network is back: retry now rather than at the end of the backoff.
  const online = () => retryNow?.();
  globalThis.addEventListener?.('online', online);

  const failed = async (text) => {
    failures += 1;
    if (failures === 1) onConnection(false, text);
    await pause(backoff(failures));
  };

  (async () => {
    while (!stopped) {
      controller = new AbortController();
      const wait = failures > 0 ? 0 : waitSeconds;
      // A poll the server holds longer than it promised is a dead connection.
      const watchdog = setTimeout(() => controller.abort(), (wait + 15) * 1000);
      let answer;
      try {
        answer = await api.events(token, cursor, wait, controller.signal);
      } catch {
        if (!stopped) await failed();
        continue;
      } finally {
        clearTimeout(watchdog);
      }
      if (stopped) return;
      const { status, body } = answer;
      if (status === 401) {
        stopped = true;
        onEnded(body.text);
        return;
      }
      if (status !== 200 || !Array.isArray(body.events) || typeof body.cursor !== 'string') {
        await failed(body.text);
        continue;
      }
      // The shutdown notice is not stored (its id repeats the one before
      // it): it is taken out here, and the outage it starts reported once.
      const shutdown = body.events.find(isShutdown);
      if (!shutdown && failures > 0) {
        failures = 0;
        onConnection(true);
      }
      const fresh = body.events.filter((e) => !isShutdown(e) && seen.fresh(e.id));
      cursor = body.cursor;
      onEvents(fresh, cursor);
      if (shutdown) await failed(shutdown.text);
    }
  })();

  return {
    stop() {
      stopped = true;
      globalThis.removeEventListener?.('online', online);
      controller?.abort();
      retryNow?.();
    },
  };
}
