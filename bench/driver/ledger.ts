import type { Verification } from '../protocol.js';
import type { WireObject } from './tcp-session.js';

export interface Sent {
  seq: number;
  from: string;
  to: string;
  /** performance.now() when it should have left (open loop) or left (closed loop). */
  startedAt: number;
  /** Index of the sending session, for the closed loop's windows. */
  sender: number;
}

/** The tag every bench message starts with: bm.<run>.<driver>.<phase>.<seq>. */
const TAG = /^bm\.([A-Za-z0-9]+)\.(\d+)\.(\d+)\.(\d+)(?:\s|$)/;

/** The text a message event carries as sent: `body`, or `text` without the `<from>: ` prefix. */
export function messageBody(event: WireObject): string {
  if (typeof event.body === 'string') return event.body;
  const text = typeof event.text === 'string' ? event.text : '';
  const from = typeof event.from === 'string' ? event.from : '';
  return text.startsWith(`${from}: `) ? text.slice(from.length + 2) : text;
}

/**
 * The books of one measuring phase: every message the driver sends is
 * entered with a unique tag in its text; a received message counts only if
 * its tag is one of ours, it is still outstanding (not counted before), and
 * it reached the addressee from the sender. Whatever is still outstanding
 * at the end is lost.
 */
export class Ledger {
  private readonly outstanding = new Map<number, Sent>();
  private readonly settled = new Set<number>();
  private nextSeq = 0;
  readonly verification: Verification = {
    sent: 0,
    delivered: 0,
    lost: 0,
    refused: {},
    duplicates: 0,
    misrouted: 0,
    foreign: 0,
    gaps: 0,
  };

  constructor(
    readonly runId: string,
    readonly driverIndex: number,
    readonly phase: number,
  ) {}

  /** Enters one message; returns its entry, its tag and the text to send (the tag, padded to at least `bodyBytes`). */
  send(from: string, to: string, sender: number, startedAt: number, bodyBytes: number): { entry: Sent; body: string; tag: string } {
    const seq = this.nextSeq++;
    const tag = `bm.${this.runId}.${this.driverIndex}.${this.phase}.${seq}`;
    const body = tag.length + 1 >= bodyBytes ? tag : `${tag} ${'x'.repeat(bodyBytes - tag.length - 1)}`;
    const entry: Sent = { seq, from, to, startedAt, sender };
    this.outstanding.set(seq, entry);
    this.verification.sent++;
    return { entry, body, tag };
  }

  /** Settles as refused the outstanding message whose tag the event's body carries (an XMPP error bounce); null if none is outstanding. */
  refuseByBody(event: WireObject, code: string): Sent | null {
    const match = TAG.exec(messageBody(event));
    const entry = match && Number(match[3]) === this.phase ? this.outstanding.get(Number(match[4])) : undefined;
    if (!entry) return null;
    this.refuse(entry, code);
    return entry;
  }

  refuse(entry: Sent, code: string): void {
    if (!this.outstanding.delete(entry.seq)) return;
    this.settled.add(entry.seq);
    this.verification.refused[code] = (this.verification.refused[code] ?? 0) + 1;
  }

  /**
   * Checks one received message event. Returns the entry when it counts,
   * null when it does not (the reason is tallied).
   */
  receive(receiver: string, event: WireObject): Sent | null {
    const match = TAG.exec(messageBody(event));
    if (!match || match[1] !== this.runId || Number(match[2]) !== this.driverIndex || Number(match[3]) !== this.phase) {
      this.verification.foreign++;
      return null;
    }
    const seq = Number(match[4]);
    const entry = this.outstanding.get(seq);
    if (!entry) {
      if (this.settled.has(seq)) this.verification.duplicates++;
      else this.verification.foreign++;
      return null;
    }
    if (entry.to !== receiver || entry.from !== event.from) {
      this.verification.misrouted++;
      return null;
    }
    this.outstanding.delete(seq);
    this.settled.add(seq);
    this.verification.delivered++;
    return entry;
  }

  get outstandingCount(): number {
    return this.outstanding.size;
  }

  /** Closes the books: whatever is outstanding now is lost. */
  close(): Verification {
    this.verification.lost = this.outstanding.size;
    return { ...this.verification, refused: { ...this.verification.refused } };
  }
}

/** Which phase a bench message belongs to, or null if it is none of this driver's. */
export function phaseOf(event: WireObject, runId: string, driverIndex: number): number | null {
  const match = TAG.exec(messageBody(event));
  if (!match || match[1] !== runId || Number(match[2]) !== driverIndex) return null;
  return Number(match[3]);
}
