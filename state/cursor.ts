/**
 * A session's cursor: how far it has read in each of its two streams, its
 * personal inbox and the shared lobby (ARCHITECTURE.md, Delivery model).
 * Clients see it as an opaque string (SPEC section 4) and pass it back; only
 * the server reads it.
 */
export interface Cursor {
  inbox: number;
  lobby: number;
}

const pattern = /^(\d{1,15})-(\d{1,15})$/;

export function formatCursor(c: Cursor): string {
  return `${c.inbox}-${c.lobby}`;
}

/** The cursor a string names, or null if it is not one the server hands out. */
export function parseCursor(text: string): Cursor | null {
  const m = pattern.exec(text);
  return m ? { inbox: Number(m[1]), lobby: Number(m[2]) } : null;
}
