// The long-poll loop: always passes the last cursor it got as `after`, so
// nothing is lost or repeated across network errors and replica restarts;
// after a failure it waits (exponential backoff with jitter) and tries again
// from the same cursor.

import * as api from './api.js';

/** Milliseconds to wait before retry number `failures` (1, 2, ...). */
export function backoff(failures, random = Math.random) {
  const base = Math.min(500 * 2 ** (failures - 1), 8000);
  return Math.round(base * (0.8 + 0.4 * random()));
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

/**
 * Starts polling after `cursor`. Callbacks:
 * - onEvents(events, cursor): new events, then the cursor to keep;
 * - onGap(): the server no longer had everything after our cursor;
 * - onConnection(up, text): the server stopped or started answering;
 * - onEnded(text): the session is over (401); polling has stopped.
 * Returns { stop() }.
 */
export function startPoller({ token, cursor, waitSeconds = 25, onEvents, onGap, onConnection, onEnded }) {
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
      // A poll the server holds longer than it promised is a dead connection.
      const watchdog = setTimeout(() => controller.abort(), (waitSeconds + 15) * 1000);
      let answer;
      try {
        answer = await api.events(token, cursor, waitSeconds, controller.signal);
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
      if (failures > 0) {
        failures = 0;
        onConnection(true);
      }
      if (body.gap) onGap();
      // A shutdown notice repeats the id of the event before it (it is not
      // stored), so it is never taken for a repeat.
      const fresh = body.events.filter((e) => e.type === 'session_end' || seen.fresh(e.id));
      cursor = body.cursor;
      onEvents(fresh, cursor);
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
