import RedisMock from 'ioredis-mock';
import { expect } from 'vitest';
import { dispatch } from '../../handlers/registry.js';
import { wireReply } from '../../handlers/replies.js';
import type { Caller, Config, Context, Reply } from '../../handlers/types.js';
import { Cursor, formatCursor, parseCursor } from '../../state/cursor.js';
import { RedisState } from '../../state/redis.js';
import { merge } from '../../delivery/feed.js';
import { FakeClock, sampleUsers, testContext } from '../support/context.js';

/** An event as a client receives it (SPEC section 4): `type`, `text`, `id`, `at` and its own fields. */
export interface Event {
  type: string;
  text: string;
  id: string;
  at: number;
  [field: string]: unknown;
}

/** A logged-in client: its caller (address and session) and the login reply it got. */
export interface Client {
  user: string;
  caller: Caller;
  reply: Reply;
}

export function passwordOf(user: string): string {
  const entry = sampleUsers.find((u) => u.user === user);
  if (!entry) throw new Error(`no sample user ${user}`);
  return entry.password;
}

/** Each sample user connects from an address of their own unless a test says otherwise. */
const homeAddress: Record<string, string> = {
  yoda: '10.0.0.1',
  luke: '10.0.0.2',
  hans: '10.0.0.3',
  leia: '10.0.0.4',
};

// The mock shares data between clients on the same port: a port per store,
// away from the ones test/support hands out.
let nextPort = 40000;

/**
 * One server (or several replicas of it) on a fresh mock state store, with
 * the sample users and a fake clock. Everything goes through `dispatch`.
 */
export class Server {
  /** Where each user's latest session started reading (its login cursor). */
  private readonly starts = new Map<string, Cursor>();

  private constructor(
    readonly ctx: Context,
    readonly clock: FakeClock,
    private readonly port: number,
  ) {}

  static async start(config: Partial<Config> = {}): Promise<Server> {
    const port = nextPort++;
    const redis = new RedisMock({ port });
    const { ctx, clock } = await testContext(config, new RedisState(redis, redis.duplicate()));
    return new Server(ctx, clock, port);
  }

  /**
   * Another replica (or the same server after a restart): its own store
   * client, the same data and clock. Both run on the in-process mock, one
   * command at a time, so replicas share state here but never race; a race
   * needs a real Redis (see login-race.test.ts).
   */
  replica(): Server {
    const redis = new RedisMock({ port: this.port });
    const ctx: Context = { ...this.ctx, state: new RedisState(redis, redis.duplicate()) };
    return new Server(ctx, this.clock, this.port);
  }

  /** A connection that has not logged in. */
  caller(address = '10.0.0.1'): Caller {
    return { address };
  }

  /** Runs a command line and returns what its client sees: the reply as sent (its effects stripped, see wireReply). */
  async run(caller: Caller, line: string): Promise<Reply> {
    return wireReply(await dispatch(this.ctx, caller, line)) as Reply;
  }

  /** Tries `login <user> <password>` from a fresh connection. */
  attempt(user: string, password: string, address = homeAddress[user] ?? '10.0.9.9'): Promise<Reply> {
    return this.run(this.caller(address), `login ${user} ${password}`);
  }

  /** Logs `user` in with the right password; the login must succeed. */
  async login(user: string, address = homeAddress[user] ?? '10.0.9.9'): Promise<Client> {
    const caller = this.caller(address);
    const reply = await this.run(caller, `login ${user} ${passwordOf(user)}`);
    expect(reply, `login ${user}`).toMatchObject({ ok: true });
    caller.session = { user, token: String(reply.token) };
    this.starts.set(user, parseCursor(String(reply.cursor))!);
    return { user, caller, reply };
  }

  /** A cursor at the newest events of both of a user's streams: read after it to see only what comes next. */
  async mark(user: string): Promise<string> {
    const [inbox, lobby] = await Promise.all([this.ctx.state.read(user, 0, 0), this.ctx.state.lobbyHead()]);
    return formatCursor(new Cursor(inbox.last, lobby));
  }

  /**
   * The events delivered to `user` after cursor `after`, decoded, as a client
   * of theirs would get them (both streams, merged). Without `after`: the
   * whole inbox, and the lobby since the user's latest login.
   */
  async events(user: string, after?: string): Promise<Event[]> {
    const from = after === undefined ? new Cursor(0, this.starts.get(user)?.lobby ?? (await this.ctx.state.lobbyHead())) : parseCursor(after);
    if (!from) throw new Error(`not a cursor: ${after}`);
    const [inbox, lobby] = await Promise.all([this.ctx.state.read(user, from.inbox, 1000), this.ctx.state.readLobby(from.lobby, 1000)]);
    const start = new Cursor(inbox.events.length ? inbox.events[0].id - 1 : inbox.cursor, lobby.events.length ? lobby.events[0].id - 1 : lobby.cursor);
    return merge(user, start, inbox.events, lobby.events).events.map((e) => ({
      ...(JSON.parse(e.json) as Event),
      id: formatCursor(e.cursor),
    }));
  }

  /** The texts of the events delivered to `user` after `after`. */
  async texts(user: string, after?: string): Promise<string[]> {
    return (await this.events(user, after)).map((e) => e.text);
  }
}
