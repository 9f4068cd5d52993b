import { clientTexts } from './render.js';

/** Quiet after other output before a waiting question is shown again. */
const quietMs = 1_000;
/** Output that never pauses still lets the question through this often. */
const maxDelayMs = 5_000;

/**
 * Private-chat requests waiting for the user's y/n (SPEC section 5), oldest
 * first. A question that other output has pushed up is shown again below
 * it, once, when the output pauses: an answer never goes to a question the
 * user can no longer see, and a burst of messages costs one reminder.
 */
export class PrivateRequests {
  private readonly waiting: string[] = [];
  private timer?: NodeJS.Timeout;
  /** When the question was first pushed up since it was last shown. */
  private scrolledAt = 0;

  constructor(private readonly show: (text: string) => void) {}

  /** The users waiting for an answer, oldest first. */
  get users(): readonly string[] {
    return this.waiting;
  }

  has(user: string): boolean {
    return this.waiting.includes(user);
  }

  /** A request arrived, and its question (the server's text) was just shown. */
  add(user: string): void {
    if (!this.waiting.includes(user)) this.waiting.push(user);
    this.cancel();
    // With several waiting, the question just shown names one of them only.
    if (this.waiting.length > 1) this.scrolled();
  }

  /** The request is answered or moot (the user left, or was blocked). */
  remove(user: string): void {
    const index = this.waiting.indexOf(user);
    if (index >= 0) this.waiting.splice(index, 1);
    if (!this.waiting.length) this.cancel();
  }

  /** The session is over: its requests went with it. */
  clear(): void {
    this.waiting.length = 0;
    this.cancel();
  }

  /** Other output was printed below the question: show it again once that output pauses. */
  scrolled(): void {
    if (!this.waiting.length) return;
    const now = Date.now();
    if (!this.timer) this.scrolledAt = now;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.remind(), Math.max(0, Math.min(quietMs, this.scrolledAt + maxDelayMs - now)));
    this.timer.unref();
  }

  /** Shows the question for every waiting request now. */
  remind(): void {
    this.cancel();
    if (this.waiting.length) this.show(this.question());
  }

  private question(): string {
    return this.waiting.length === 1 ? clientTexts.privateRequest(this.waiting[0]) : clientTexts.privateRequests(this.waiting);
  }

  private cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
