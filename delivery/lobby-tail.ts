import type { LobbyEvent } from '../state/index.js';

/**
 * The newest lobby events, kept in this replica's memory and fed by the
 * lobby's wake-ups, so waking thousands of local sessions for one broadcast
 * or presence event reads nothing from the store. It only answers for
 * positions it covers without a hole; a session further behind reads the
 * store.
 */
export class LobbyTail {
  private events: LobbyEvent[] = [];
  /** The newest position the tail is complete up to; -1 until seeded. */
  private last = -1;
  /** Events that arrived before the tail was seeded. */
  private early: LobbyEvent[] = [];

  constructor(private readonly size: number) {}

  /** Starts the tail at the lobby's head as the store reported it after subscribing. */
  seed(head: number): void {
    this.events = [];
    this.last = head;
    const early = this.early;
    this.early = [];
    for (const event of early) this.push(event);
  }

  /** Forgets everything (wake-ups may have been missed) until seeded again. */
  reset(): void {
    this.events = [];
    this.last = -1;
    this.early = [];
  }

  push(event: LobbyEvent): void {
    if (this.last < 0) {
      if (this.early.length < this.size) this.early.push(event);
      return;
    }
    if (event.id <= this.last) return;
    // A hole (a wake-up never came): the tail starts again at this event.
    if (event.id !== this.last + 1) this.events = [];
    this.events.push(event);
    this.last = event.id;
    // Trim in batches: one splice per `size / 4` events, not one per event.
    if (this.events.length > this.size + (this.size >> 2)) this.events.splice(0, this.events.length - this.size);
  }

  /**
   * Up to `limit` events after position `after`, or null when the tail does
   * not cover it (not seeded, or `after` is older than its oldest event). A
   * position past the tail's newest event (the store is ahead of the wake-ups
   * in flight) reads as nothing yet.
   */
  after(after: number, limit: number): LobbyEvent[] | null {
    if (this.last < 0) return null;
    if (after >= this.last) return [];
    const first = this.events.length ? this.events[0].id : this.last + 1;
    if (after < first - 1) return null;
    const start = after - first + 1;
    return this.events.slice(start, start + limit);
  }
}
