import type { Browser, BrowserContext, Locator, Page, Request } from 'playwright-core';
import type { TcpClient } from '../support/tcp-client.js';

/**
 * A user of the web client in a browser context of their own (so their
 * sessionStorage is their own), with the few gestures the tests need.
 */
export class WebUser {
  /** Every dialog the page tried to open (alert() from injected markup would land here). */
  readonly dialogs: string[] = [];
  /**
   * Every uncaught error and every console error (a CSP violation, a failed
   * request, a console.error), as `<text> @ <url>`.
   */
  readonly errors: string[] = [];
  /** Who last logged in on this page, to name it in a failure. */
  name = '(nobody logged in)';
  /** Request failures the running test causes on purpose, and the page handles. */
  private readonly expected: ExpectedFailure[] = [];
  /** How many long-polls the page sent. */
  sentPolls = 0;
  /** How many of them failed (no answer: refused, cut off). */
  failedPolls = 0;
  /** The page's long-polls not answered yet, and when each was sent. */
  private readonly polls = new Map<Request, number>();

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('dialog', (dialog) => {
      this.dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('pageerror', (err) => this.errors.push(String(err)));
    page.on('console', (message) => {
      if (message.type() === 'error') this.errors.push(`${message.text()} @ ${message.location().url}`);
    });
    page.on('request', (request) => {
      if (new URL(request.url()).pathname !== '/events') return;
      this.sentPolls += 1;
      this.polls.set(request, Date.now());
    });
    page.on('requestfinished', (request) => this.polls.delete(request));
    page.on('requestfailed', (request) => {
      if (this.polls.delete(request)) this.failedPolls += 1;
    });
  }

  /**
   * Chromium logs every request that fails, and every answer with an error
   * status, as a console error, even when the page reads the answer and shows
   * it (an error reply is JSON with a `text`). A test that causes such
   * failures says which: requests to `path` (the URL's path, no query) that
   * fail with `failure`, an HTTP status or a network error such as
   * `net::ERR_CONNECTION_REFUSED`. Anything else is unexpected.
   */
  expectFailedRequests(path: string, failure: number | RegExp): void {
    this.expected.push({ path, failure });
  }

  /** The errors collected so far that no expectFailedRequests() covers. */
  unexpectedErrors(): string[] {
    return this.errors.filter((error) => !this.expected.some((expected) => covers(expected, error)));
  }

  static async open(browser: Browser, base: string, viewport = { width: 1000, height: 700 }): Promise<WebUser> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const user = new WebUser(context, page);
    await page.goto(`${base}/`);
    return user;
  }

  /**
   * Whether a long-poll sent at least `forMs` ago is still unanswered: the
   * server holds it, so an event (or a shutdown) will answer it.
   */
  pollHeld(forMs = 500): boolean {
    const now = Date.now();
    return [...this.polls.values()].some((sent) => now - sent >= forMs);
  }

  /** Fills and submits the login form; does not wait for the outcome. */
  async submitLogin(username: string, password: string): Promise<void> {
    this.name = username;
    await this.page.getByLabel('Username').fill(username);
    await this.page.getByLabel('Password').fill(password);
    await this.page.getByLabel('Password').press('Enter');
  }

  /** Logs in and waits for the welcome line and the online list to be seeded. */
  async login(username: string, password: string): Promise<void> {
    await this.submitLogin(username, password);
    await this.line('Welcome to the greatest messaging application ever!').waitFor();
    await this.page.locator('#online[aria-busy="false"]').waitFor({ state: 'attached' });
  }

  /** Types a line into the composer, "To" set to `to` (empty: the line is a command as typed), and presses Enter. */
  async type(text: string, to = ''): Promise<void> {
    await this.page.getByRole('combobox', { name: 'To' }).fill(to);
    const input = this.page.getByLabel('Message or command');
    await input.fill(text);
    await input.press('Enter');
  }

  /** The conversation line whose text is exactly `text`. */
  line(text: string): Locator {
    return this.page.locator('#log .text').getByText(text, { exact: true });
  }

  /** Every conversation line's text, in order. */
  lines(): Promise<string[]> {
    return this.page.locator('#log .text').allTextContents();
  }

  /** The row of `user` in the online list. */
  person(user: string): Locator {
    return this.page.locator(`#online li[data-user="${user}"]`);
  }

  /** The session token the page keeps, or null once the session is over. */
  // Page-side code is passed as strings: the test project's types have no DOM.
  async token(): Promise<string | null> {
    const saved = await this.page.evaluate<string | null>("sessionStorage.getItem('im.session')");
    return saved ? (JSON.parse(saved) as { token: string }).token : null;
  }

  /** The id of the focused element ('' if it has none). */
  focusedId(): Promise<string> {
    return this.page.evaluate<string>("document.activeElement ? document.activeElement.id : ''");
  }

  /** How many pixels the page is wider than the window (0 or less: no sideways scrolling). */
  horizontalOverflow(): Promise<number> {
    return this.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  }

  /** How many pixels the page is taller than the window (0 or less: the page itself does not scroll). */
  verticalOverflow(): Promise<number> {
    return this.page.evaluate<number>('document.documentElement.scrollHeight - window.innerHeight');
  }

  /** The conversation's scrolling pane. */
  log(): Locator {
    return this.page.locator('#log');
  }

  /**
   * Whether all of `target` is on screen: inside the window and, if it sits
   * in a scrolling pane (`within`), inside that pane's visible box. Measured
   * from layout boxes, not pixels of a screenshot.
   */
  async onScreen(target: Locator, within?: Locator): Promise<boolean> {
    const box = await target.boundingBox();
    const viewport = this.page.viewportSize();
    if (!box || !viewport) return false;
    const inside = (outer: { x: number; y: number; width: number; height: number }) =>
      box.x >= outer.x - 0.5 && box.y >= outer.y - 0.5 && box.x + box.width <= outer.x + outer.width + 0.5 && box.y + box.height <= outer.y + outer.height + 0.5;
    if (!inside({ x: 0, y: 0, ...viewport })) return false;
    if (!within) return true;
    const pane = await within.boundingBox();
    return pane !== null && inside(pane);
  }

  /** Logs the session out behind the page's back (test clean-up) and closes the context. */
  async close(base: string): Promise<void> {
    const token = await this.token().catch(() => null);
    if (token) await fetch(`${base}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
    await this.context.close();
  }
}

interface ExpectedFailure {
  path: string;
  failure: number | RegExp;
}

/** `Failed to load resource: <why> @ <url>`, as chromium logs a failed request. */
const failedRequest = /^Failed to load resource: (?:the server responded with a status of (\d+) .*|(net::\S+)) @ (\S+)$/;

function covers(expected: ExpectedFailure, error: string): boolean {
  const found = failedRequest.exec(error);
  if (!found || new URL(found[3]!).pathname !== expected.path) return false;
  return typeof expected.failure === 'number' ? Number(found[1]) === expected.failure : found[2] !== undefined && expected.failure.test(found[2]);
}

/**
 * A test's clean-up for the browser users it opened: notes their unexpected
 * errors, closes them all (logging their sessions out), then fails if there
 * were any. The errors are taken before closing, so a page that sees its
 * session end behind its back during clean-up is not blamed.
 */
export async function closeUsers(users: WebUser[], base: string): Promise<void> {
  const found = users.flatMap((user) => user.unexpectedErrors().map((error) => `${user.name}: ${error}`));
  for (const user of users) await user.close(base);
  if (found.length > 0) throw new Error(`unexpected errors in the page:\n${found.join('\n')}`);
}

/** Polls `check` until it returns true or the deadline passes, then fails with `describe()`. */
export async function eventually(check: () => Promise<boolean>, describe: () => Promise<string> | string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A test's clean-up: logs out and closes its TCP users, then closes its
 * pages, last, so that a page that logged an error it did not expect fails
 * the test. Both lists are emptied.
 */
export async function endTest(tcpUsers: TcpClient[], webUsers: WebUser[], base: string): Promise<void> {
  for (const client of tcpUsers.splice(0)) {
    if (!client.closed) await client.command('logout').catch(() => undefined);
    client.close();
  }
  await closeUsers(webUsers.splice(0), base);
}
