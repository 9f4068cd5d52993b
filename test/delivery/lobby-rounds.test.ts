import { describe, expect, it, vi } from 'vitest';
import { Live, presenceWindowMs, roundSlice, roundSpacing, type Wake } from '../../delivery/live.js';
import type { State, StoredEvent } from '../../state/index.js';

/**
 * Lobby events reach this replica's listeners in rounds (delivery/live.ts):
 * a broadcast right after the read that brought it, presence after waiting
 * up to the window for others to go with it; in order, each once. A round
 * is one pass in one tick, so a TCP session writes its round's lines at once.
 */

/** Just enough of a State for Live: the hooks it registers, and what it asks at start. */
function fakeState() {
  let lobbyListener: (event: StoredEvent) => void = () => undefined;
  let wakeListener: (user: string, event: StoredEvent) => void = () => undefined;
  const state = {
    onWake: (listener: (user: string, event: StoredEvent) => void) => (wakeListener = listener),
    onLobby: (listener: (event: StoredEvent) => void) => (lobbyListener = listener),
    onResync: () => undefined,
    watch: async () => undefined,
    unwatch: async () => undefined,
    watchLobby: async () => undefined,
    lobbyHead: async () => 0,
  } as unknown as State;
  const event = (id: number, kind: string): StoredEvent => ({ id, kind, at: id, skip: [], json: `{"type":"${kind}","n":${id}}` });
  return {
    state,
    publish: (id: number, kind = 'presence') => lobbyListener(event(id, kind)),
    inbox: (user: string, id: number) => wakeListener(user, { id, kind: 'session_end', at: id, skip: [], json: '{"type":"session_end"}' }),
  };
}

/** Settles after the event loop's next check phase: what was scheduled with setImmediate before has run. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Records each wake-up with the round (tick) it came in. */
async function listening(live: Live) {
  const rounds: number[][] = [];
  let tick = -1;
  let last: number | null = null;
  await live.listen('yoda', (wake: Wake) => {
    if (wake.kind !== 'lobby') return;
    // Wake-ups of one round come in one synchronous pass: a new pass is a new round.
    if (last === null) {
      tick++;
      rounds[tick] = [];
      last = tick;
      queueMicrotask(() => (last = null));
    }
    rounds[tick].push(wake.event.id);
  });
  return rounds;
}

describe('lobby events reach listeners in rounds', () => {
  it('a lone broadcast goes at once; presence waits for the window and goes in one round with what came meanwhile', async () => {
    const { state, publish } = fakeState();
    const live = new Live(state, 0, 64);
    await live.start();
    const rounds = await listening(live);

    publish(1, 'broadcast');
    // At once: in the very next turn of the event loop.
    await nextTurn();
    expect(rounds).toEqual([[1]]);

    const t0 = Date.now();
    publish(2);
    await nextTurn();
    expect(rounds).toEqual([[1]]);
    for (let id = 3; id <= 50; id++) publish(id);
    await vi.waitFor(() => expect(rounds.flat()).toHaveLength(50), { timeout: 5000, interval: 1 });
    expect(rounds).toEqual([[1], Array.from({ length: 49 }, (_v, k) => k + 2)]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(presenceWindowMs - 1);
    // The tail of the lobby had each event as it came (reads never wait for a round).
    expect(live.lobby.after(0, 100)?.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_v, k) => k + 1));
  });

  it('a broadcast takes the presence waiting before it along at once, in order', async () => {
    const { state, publish } = fakeState();
    const live = new Live(state, 0, 64);
    await live.start();
    const rounds = await listening(live);
    publish(1);
    publish(2);
    await nextTurn();
    expect(rounds).toEqual([]);
    publish(3, 'broadcast');
    await nextTurn();
    expect(rounds).toEqual([[1, 2, 3]]);
  });

  it('an inbox event never overtakes a lobby event that came before it and waits for its round', async () => {
    const { state, publish, inbox } = fakeState();
    const live = new Live(state, 0, 64);
    await live.start();
    const seen: string[] = [];
    await live.listen('yoda', (wake) => seen.push(wake.kind === 'resync' ? 'resync' : `${wake.kind}:${wake.event.id}`));
    await live.listen('luke', (wake) => seen.push(`luke ${wake.kind === 'resync' ? 'resync' : `${wake.kind}:${wake.event.id}`}`));
    publish(1);
    await vi.waitFor(() => expect(seen).toContain('lobby:1'), { timeout: 5000, interval: 1 });
    seen.length = 0;
    // Within the window: event 2 waits for its round, but yoda's inbox event comes after it.
    publish(2);
    inbox('yoda', 7);
    expect(seen).toEqual(['lobby:2', 'inbox:7']);
    // The round still passes event 2 to everyone (yoda skips it: his stream has it).
    await vi.waitFor(() => expect(seen).toEqual(['lobby:2', 'inbox:7', 'lobby:2', 'luke lobby:2']), { timeout: 5000, interval: 1 });
  });

  it('a round over more listeners than a slice spans turns of the event loop, and other work runs between its slices', async () => {
    const { state, publish } = fakeState();
    const live = new Live(state, 0, 64);
    await live.start();
    const users = roundSlice * 2 + 10;
    const got = new Map<number, number[]>();
    const order: string[] = [];
    for (let u = 0; u < users; u++) {
      got.set(u, []);
      await live.listen(`user${u}`, (wake) => {
        if (wake.kind !== 'lobby') return;
        got.get(u)!.push(wake.event.id);
        if (order.at(-1) !== 'round') order.push('round');
      });
    }
    publish(1);
    publish(2, 'broadcast');
    // Work that comes in while the round is out: it runs before the round ends.
    setImmediate(() => order.push('other'));
    await vi.waitFor(() => expect([...got.values()].every((ids) => ids.length === 2)).toBe(true), { timeout: 5000, interval: 1 });
    for (const ids of got.values()) expect(ids).toEqual([1, 2]);
    expect(order.indexOf('other')).toBeGreaterThan(0);
    expect(order.lastIndexOf('round')).toBeGreaterThan(order.indexOf('other'));
  });

  it('an inbox event for a listener the round in progress has not reached yet comes after the round\'s events', async () => {
    const { state, publish, inbox } = fakeState();
    const live = new Live(state, 0, 64);
    await live.start();
    const seen = new Map<string, string[]>();
    // Set off by the round's first slice: it runs in the next turn, before the second slice.
    let firstSlice = () => undefined as unknown;
    const betweenSlices = new Promise((resolve) => (firstSlice = () => setImmediate(resolve)));
    for (let u = 0; u < roundSlice + 5; u++) {
      const user = `user${u}`;
      seen.set(user, []);
      await live.listen(user, (wake) => {
        seen.get(user)!.push(wake.kind === 'resync' ? 'resync' : `${wake.kind}:${wake.event.id}`);
        if (u === 0) firstSlice();
      });
    }
    publish(1, 'broadcast');
    await betweenSlices;
    expect(seen.get('user0')).toEqual(['lobby:1']);
    const last = `user${roundSlice + 4}`;
    expect(seen.get(last)).toEqual([]);
    inbox(last, 9);
    expect(seen.get(last)).toEqual(['lobby:1', 'inbox:9']);
    // The round reaches it too (its stream skips what it has).
    await vi.waitFor(() => expect(seen.get(last)).toEqual(['lobby:1', 'inbox:9', 'lobby:1']), { timeout: 5000, interval: 1 });
  });

  it(`presence rounds are at least ${roundSpacing} times the last round's cost apart, so they never take the whole replica`, async () => {
    const { state, publish } = fakeState();
    const live = new Live(state, 0, 64);
    await live.start();
    const calls: { id: number; at: number }[] = [];
    for (let u = 0; u < 40; u++) {
      await live.listen(`user${u}`, (wake) => {
        if (wake.kind !== 'lobby') return;
        // Each wake-up costs a millisecond of this process's time, like thousands of socket writes would.
        const until = performance.now() + 1;
        while (performance.now() < until);
        calls.push({ id: wake.event.id, at: performance.now() });
      });
    }
    publish(1);
    await vi.waitFor(() => expect(calls).toHaveLength(40), { timeout: 5000, interval: 1 });
    const first = calls.filter((c) => c.id === 1);
    const cost = first.at(-1)!.at - first[0].at;
    expect(cost).toBeGreaterThan(30);
    publish(2);
    await vi.waitFor(() => expect(calls).toHaveLength(80), { timeout: 10_000, interval: 1 });
    const second = calls.find((c) => c.id === 2)!;
    expect(second.at - first.at(-1)!.at).toBeGreaterThanOrEqual(roundSpacing * cost);
  });
});

