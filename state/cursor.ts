/**
 * A session's cursor: how far it has read in each of its two streams, its
 * personal inbox and the shared lobby (ARCHITECTURE.md, Delivery model).
 *
 * Clients see it as an opaque string (SPEC section 4) and pass it back;
 * handlers and transports hold it and pass it on. Only the store (which
 * keeps it in the session) and the delivery room (delivery/, which reads
 * the streams after it) look inside. It serializes as its string, so a
 * reply or a JSON body may carry it as it is.
 */
export class Cursor {
  constructor(
    readonly inbox: number,
    readonly lobby: number,
  ) {}

  /** The cursor a string names, or null if it is not one the server hands out. */
  static parse(text: string): Cursor | null {
    const m = pattern.exec(text);
    return m ? new Cursor(Number(m[1]), Number(m[2])) : null;
  }

  /** Past inbox event `id`. */
  withInbox(id: number): Cursor {
    return new Cursor(id, this.lobby);
  }

  /** Past lobby event `id`. */
  withLobby(id: number): Cursor {
    return new Cursor(this.inbox, id);
  }

  equals(other: Cursor): boolean {
    return this.inbox === other.inbox && this.lobby === other.lobby;
  }

  toString(): string {
    return cursorText(this.inbox, this.lobby);
  }

  toJSON(): string {
    return this.toString();
  }
}

const pattern = /^(\d{1,15})-(\d{1,15})$/;

/**
 * The text of the cursor at these positions, without making one: a session
 * that moves its cursor on every event keeps the two numbers (see
 * delivery/session-stream.ts).
 */
export function cursorText(inbox: number, lobby: number): string {
  return `${inbox}-${lobby}`;
}

/** The cursor as clients see it. */
export function formatCursor(c: Cursor): string {
  return c.toString();
}

/** The cursor a string names, or null if it is not one the server hands out. */
export function parseCursor(text: string): Cursor | null {
  return Cursor.parse(text);
}
