import type { State } from '../state/index.js';

/**
 * Called with each new event of a user this replica serves, or with id 0
 * when the listener should read the inbox (events may have been missed).
 */
export type EventListener = (id: number, json: string) => void;

interface Watched {
  listeners: Set<EventListener>;
  /** Settles once the wake-up subscription is confirmed by the store. */
  ready: Promise<void>;
  linger?: NodeJS.Timeout;
}

/**
 * Live delivery: in-process listeners (TCP sessions, parked long-polls)
 * released by pub/sub wake-ups. This replica subscribes to a user's wake-ups
 * only while it serves that user, through one subscriber connection; no
 * waiting client holds a Redis connection or a blocking read.
 *
 * A subscription outlives its last listener by `lingerMs`, so a long-poll
 * client that polls again at once does not pay for unsubscribe + subscribe.
 */
export class Live {
  private readonly watched = new Map<string, Watched>();

  constructor(
    private readonly state: State,
    private readonly lingerMs = 30_000,
  ) {
    state.onWake((user, id, json) => {
      const entry = this.watched.get(user);
      if (entry) for (const listener of [...entry.listeners]) listener(id, json);
    });
    state.onResync(() => this.wakeAll());
  }

  /**
   * Adds a listener for a user's events and resolves once wake-ups for the
   * user are flowing: read the inbox only after this, so that no event falls
   * between the read and the subscription. Returns the remover.
   */
  async listen(user: string, listener: EventListener): Promise<() => void> {
    let entry = this.watched.get(user);
    if (!entry) {
      entry = { listeners: new Set(), ready: this.state.watch(user) };
      this.watched.set(user, entry);
    }
    if (entry.linger) {
      clearTimeout(entry.linger);
      entry.linger = undefined;
    }
    entry.listeners.add(listener);
    const watched = entry;
    await watched.ready;
    return () => {
      watched.listeners.delete(listener);
      if (watched.listeners.size > 0 || watched.linger) return;
      watched.linger = setTimeout(() => {
        if (this.watched.get(user) !== watched || watched.listeners.size > 0) return;
        this.watched.delete(user);
        this.state.unwatch(user).catch(() => undefined);
      }, this.lingerMs);
      watched.linger.unref();
    };
  }

  /** Wakes every listener: after missed wake-ups, or to answer parked long-polls at shutdown. */
  wakeAll(): void {
    for (const entry of this.watched.values()) for (const listener of [...entry.listeners]) listener(0, '');
  }

  /** Number of users this replica currently listens for. */
  get users(): number {
    return this.watched.size;
  }
}
