import type { State, StoredEvent } from '../state/index.js';
import { LobbyTail } from './lobby-tail.js';
import type { Wakeups } from './wakeups.js';

/**
 * What wakes a listener: a new event in the user's inbox, a new lobby event,
 * or `resync` when wake-ups may have been missed and it should read again.
 */
export type Wake = { kind: 'inbox'; event: StoredEvent } | { kind: 'lobby'; event: StoredEvent } | { kind: 'resync' };
export type WakeHandler = (wake: Wake) => void;

/** How long presence events wait for others to go with them (see Live.scheduleLobby). */
export const presenceWindowMs = 25;
/** Presence rounds are at least this many times the last round's cost apart (see Live.scheduleLobby). */
export const roundSpacing = 3;
/** Listeners a round wakes per turn of the event loop. */
export const roundSlice = 64;

interface Watched {
  listeners: Set<WakeHandler>;
  /** Settles once the wake-up subscription is confirmed by the store. */
  ready: Promise<void>;
  linger?: NodeJS.Timeout;
}

/**
 * Live delivery: in-process listeners (TCP sessions, parked long-polls)
 * released by pub/sub wake-ups. This replica subscribes to the lobby, and to
 * a user's inbox only while it serves that user, through one subscriber
 * connection; no waiting client holds a Redis connection or a blocking read.
 * The lobby's newest events are kept in `lobby`, so a lobby event reaches
 * every local session without a read.
 *
 * A subscription outlives its last listener by `lingerMs`, so a long-poll
 * client that polls again at once does not pay for unsubscribe + subscribe.
 */
export class Live implements Wakeups {
  private readonly watched = new Map<string, Watched>();
  readonly lobby: LobbyTail;
  /** Lobby events received and not yet passed to the listeners. */
  private pendingLobby: StoredEvent[] = [];
  /** A broadcast (or other non-presence event) is among them: the next round goes at once. */
  private pendingUrgent = false;
  private lobbyFlush: NodeJS.Timeout | NodeJS.Immediate | null = null;
  /** The round scheduled goes at once (setImmediate), not at the end of a window. */
  private lobbyFlushNow = false;
  /** The events of the round being passed out, while it spans turns of the event loop; null between rounds. */
  private round: StoredEvent[] | null = null;
  /** A round is out, or its cost not yet taken: the next one waits. */
  private rounding = false;
  /** What the last round cost this process, in milliseconds: it spaces the presence rounds. */
  private lastRoundMs = 0;

  constructor(
    private readonly state: State,
    private readonly lingerMs = 30_000,
    lobbyTail = 1024,
  ) {
    this.lobby = new LobbyTail(lobbyTail);
    state.onWake((user, event) => {
      const entry = this.watched.get(user);
      if (!entry) return;
      for (const listener of entry.listeners) {
        // Lobby events that came in before this one and wait for their
        // round reach this user first: an inbox event never overtakes them
        // (a session_end would otherwise end a stream before the logout of
        // another user announced earlier). The round passes them on again;
        // a listener skips what it has.
        if (this.round) for (const lobbyEvent of this.round) listener({ kind: 'lobby', event: lobbyEvent });
        for (const lobbyEvent of this.pendingLobby) listener({ kind: 'lobby', event: lobbyEvent });
        listener({ kind: 'inbox', event });
      }
    });
    state.onLobby((event) => {
      this.lobby.push(event);
      this.pendingLobby.push(event);
      if (event.kind !== 'presence') this.pendingUrgent = true;
      this.scheduleLobby();
    });
    state.onResync(() => {
      this.lobby.reset();
      this.seedLobby().catch(() => undefined);
      this.wakeAll({ kind: 'resync' });
    });
  }

  /** Subscribes to the lobby and seeds its tail; call once before serving. */
  async start(): Promise<void> {
    await this.state.watchLobby();
    await this.seedLobby();
  }

  private async seedLobby(): Promise<void> {
    this.lobby.seed(await this.state.lobbyHead());
  }

  /**
   * Adds a listener for a user's events and resolves once wake-ups for the
   * user are flowing: read only after this, so that no event falls between
   * the read and the subscription. Returns the remover; `remove(false)`
   * drops an unused subscription at once instead of letting it linger (a
   * poll whose token turned out wrong).
   */
  async listen(user: string, listener: WakeHandler): Promise<(linger?: boolean) => void> {
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
    const remove = (linger = true) => {
      watched.listeners.delete(listener);
      if (watched.listeners.size > 0) return;
      clearTimeout(watched.linger);
      const drop = () => {
        if (this.watched.get(user) !== watched || watched.listeners.size > 0) return;
        this.watched.delete(user);
        this.state.unwatch(user).catch(() => undefined);
      };
      if (!linger) {
        drop();
        return;
      }
      watched.linger = setTimeout(drop, this.lingerMs);
      watched.linger.unref();
    };
    try {
      await watched.ready;
    } catch (err) {
      // The subscription failed: forget it, so the next listener tries again.
      remove(false);
      throw err;
    }
    return remove;
  }

  /**
   * Lobby events go out in rounds. A round passes its events to every
   * listener, each listener's in one synchronous call, so a TCP session
   * writes a round's lines at once and a parked long-poll answers once per
   * round. A broadcast goes at once (with whatever came in the same read,
   * and any presence waiting); presence waits for company, `presenceWindowMs`
   * or `roundSpacing` times what the last round took (with the answers it
   * set off) if that is longer, so
   * presence rounds never take more than about a quarter of the replica's
   * time however many sessions are online: the logins of a longer window
   * share one round. A round wakes `roundSlice` listeners per turn of the
   * event loop, so commands (a login among them) run between its slices
   * instead of waiting behind thousands of writes. Every login and logout is
   * a presence line to every online session (one write each); bench/README.md
   * has the measurements.
   */
  private scheduleLobby(): void {
    if (this.rounding || this.pendingLobby.length === 0) return;
    const urgent = this.pendingUrgent;
    if (this.lobbyFlush && (!urgent || this.lobbyFlushNow)) return;
    if (this.lobbyFlush) clearTimeout(this.lobbyFlush as NodeJS.Timeout);
    const start = () => {
      this.lobbyFlush = null;
      this.startRound();
    };
    this.lobbyFlushNow = urgent;
    this.lobbyFlush = urgent ? setImmediate(start) : setTimeout(start, Math.max(presenceWindowMs, roundSpacing * this.lastRoundMs));
  }

  private startRound(): void {
    const events = this.pendingLobby;
    this.pendingLobby = [];
    this.pendingUrgent = false;
    this.round = events;
    this.rounding = true;
    const entries = this.watched.values();
    const wakes: Wake[] = events.map((event) => ({ kind: 'lobby', event }));
    const started = performance.now();
    const slice = () => {
      let woken = 0;
      let next = entries.next();
      while (!next.done) {
        // A Set may lose members while iterated (a listener that stops itself): safe.
        for (const listener of next.value.listeners) {
          for (const wake of wakes) listener(wake);
          woken++;
        }
        if (woken >= roundSlice) break;
        next = entries.next();
      }
      if (!next.done) {
        setImmediate(slice);
        return;
      }
      // Timed to the next turn: the sockets' writes and the long-polls'
      // answers this round set off are done by then (and whatever else ran
      // between the slices, so a busy replica spaces its rounds wider).
      this.round = null;
      setImmediate(() => {
        this.lastRoundMs = performance.now() - started;
        this.rounding = false;
        this.scheduleLobby();
      });
    };
    slice();
  }

  /** Wakes every listener: a lobby event, missed wake-ups, or parked long-polls to answer at shutdown. */
  wakeAll(wake: Wake = { kind: 'resync' }): void {
    // A Set may lose members while iterated (a listener that stops itself): safe.
    for (const entry of this.watched.values()) for (const listener of entry.listeners) listener(wake);
  }
}
