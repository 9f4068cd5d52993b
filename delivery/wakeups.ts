import type { LobbyEvent, State } from '../state/index.js';
import type { Wake, WakeHandler } from './live.js';

/**
 * What the HTTP app and the feed need from live delivery: "tell me when this
 * user's streams grow" and "the lobby's newest events, if held in memory".
 * On Node, `Live` provides it (one pub/sub subscriber per replica and a lobby
 * tail); on a Worker, which has no process that outlives a request,
 * `PolledWakeups` does, by watching the streams' heads.
 */
export interface Wakeups {
  /**
   * Adds a listener for a user's streams and resolves once growth will be
   * noticed: read only after this, so that nothing falls between the read
   * and the listening. Returns the remover (`remove(false)`: the listening
   * is not worth keeping, e.g. the token was wrong).
   */
  listen(user: string, listener: WakeHandler): Promise<(linger?: boolean) => void>;
  /** Wakes every listener (parked long-polls to answer at shutdown). */
  wakeAll(wake?: Wake): void;
  /** Lobby events after a position from memory, or null: read the store. */
  readonly lobby: { after(after: number, limit: number): LobbyEvent[] | null };
}

/**
 * Wake-ups by polling, for a host whose requests cannot share a subscriber
 * connection (a Cloudflare Worker: I/O objects belong to one request). Each
 * listener notes the heads of the user's inbox and of the lobby when it
 * starts, then every `intervalMs` reads them again on the request's own
 * connection (two commands, one round trip with auto-pipelining) and wakes
 * the listener with `resync` when either moved; it never reads events
 * itself. Nothing is held in memory between requests, so the lobby always
 * comes from the store.
 */
export class PolledWakeups implements Wakeups {
  private readonly listeners = new Set<WakeHandler>();
  readonly lobby = { after: () => null };

  constructor(
    private readonly state: State,
    private readonly intervalMs: number,
  ) {}

  /** The newest id of the user's inbox and of the lobby. */
  private async heads(user: string): Promise<string> {
    // A read of no events after position 0 costs a hash field and a list length.
    const [inbox, lobby] = await Promise.all([this.state.read(user, 0, 0), this.state.lobbyHead()]);
    return `${inbox.last}-${lobby}`;
  }

  async listen(user: string, listener: WakeHandler): Promise<(linger?: boolean) => void> {
    let seen = await this.heads(user);
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = async () => {
      try {
        const now = await this.heads(user);
        if (stopped) return;
        if (now !== seen) {
          // Anything after these heads is noticed by a later check.
          seen = now;
          listener({ kind: 'resync' });
        }
      } catch {
        // The store is unreachable: try again next time; the poll's own deadline ends the wait.
      }
      if (!stopped) timer = setTimeout(check, this.intervalMs);
    };
    timer = setTimeout(check, this.intervalMs);
    this.listeners.add(listener);
    return () => {
      stopped = true;
      clearTimeout(timer);
      this.listeners.delete(listener);
    };
  }

  wakeAll(wake: Wake = { kind: 'resync' }): void {
    for (const listener of this.listeners) listener(wake);
  }
}
