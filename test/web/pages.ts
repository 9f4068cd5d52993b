import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';

/**
 * A user of the web client in a browser context of their own (so their
 * sessionStorage is their own), with the few gestures the tests need.
 */
export class WebUser {
  /** Every dialog the page tried to open (alert() from injected markup would land here). */
  readonly dialogs: string[] = [];
  /** Uncaught errors and console errors other than failed requests the page handles. */
  readonly errors: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('dialog', (dialog) => {
      this.dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('pageerror', (err) => this.errors.push(String(err)));
  }

  static async open(browser: Browser, base: string, viewport = { width: 1000, height: 700 }): Promise<WebUser> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const user = new WebUser(context, page);
    await page.goto(`${base}/`);
    return user;
  }

  /** Fills and submits the login form; does not wait for the outcome. */
  async submitLogin(username: string, password: string): Promise<void> {
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

  /** Types a line into the composer, "To" set to `to` (empty: everyone), and presses Enter. */
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

  /** Logs the session out behind the page's back (test clean-up) and closes the context. */
  async close(base: string): Promise<void> {
    const token = await this.token().catch(() => null);
    if (token) await fetch(`${base}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
    await this.context.close();
  }
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
