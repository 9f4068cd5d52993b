import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { startBrowser, type RunningBrowser } from './browser.js';
import { endTest, eventually, WebUser } from './pages.js';

/*
 * The page's layout at a desktop and a phone size (SPEC section 8: usable,
 * keyboard alone): the conversation scrolls inside its own pane, follows new
 * lines while the user is at its end, and stays put while they read older
 * ones, showing a "New messages" button that goes back to the end; the page
 * itself never grows past the window, so the input line stays on screen.
 * Positions are layout boxes against the viewport.
 */
let server: RunningServer;
let browser: RunningBrowser;
const webUsers: WebUser[] = [];
const tcpUsers: TcpClient[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([startServer({ args: ['--command-rate', '0', '--login-rate', '0'] }), startBrowser()]);
});

// Fails the test if a page logged an error it did not expect.
afterEach(() => endTest(tcpUsers, webUsers, server.http));

afterAll(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

/** yoda in a page of the given size, hans over TCP, each seeing the other online. */
async function yodaAndHans(size: { width: number; height: number }) {
  const yoda = await WebUser.open(browser.browser, server.http, { width: size.width, height: size.height });
  webUsers.push(yoda);
  await yoda.login('yoda', 'wise');
  const hans = await TcpClient.open(server.tcpPort);
  tcpUsers.push(hans);
  expect(await hans.command('login hans falcon')).toMatchObject({ ok: true });
  await yoda.person('hans').waitFor();
  return { yoda, hans };
}

const sizes = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

describe('the conversation pane', () => {
  for (const size of sizes) {
    it(`at ${size.width}x${size.height} (${size.name}) scrolls inside its pane: after 60 messages the newest line and the input line are on screen, and the page is no taller than the window`, async () => {
      const { yoda, hans } = await yodaAndHans(size);

      for (let i = 1; i <= 60; i++) expect(await hans.command(`message yoda line ${i}`)).toMatchObject({ ok: true });
      await yoda.line('hans: line 60').waitFor();
      const input = yoda.page.getByLabel('Message or command');
      const where = async () =>
        `line 60 on screen: ${await yoda.onScreen(yoda.line('hans: line 60'), yoda.log())}, ` +
        `input on screen: ${await yoda.onScreen(input)}, page taller than the window by ${await yoda.verticalOverflow()} px`;
      await eventually(async () => (await yoda.onScreen(yoda.line('hans: line 60'), yoda.log())) && (await yoda.onScreen(input)), where);
      expect(await yoda.verticalOverflow(), await where()).toBeLessThanOrEqual(0);
      expect(await yoda.horizontalOverflow()).toBeLessThanOrEqual(0);
      // The first lines are scrolled away inside the pane, not pushed off the page.
      expect(await yoda.onScreen(yoda.line('hans: line 1'), yoda.log())).toBe(false);

      // Scrolled up to read older lines: a new line does not pull the view down.
      const log = yoda.log();
      await log.hover();
      await yoda.page.mouse.wheel(0, -100_000);
      await eventually(() => yoda.onScreen(yoda.line('hans: line 1'), log), where);
      expect(await hans.command('message yoda line 61')).toMatchObject({ ok: true });
      await yoda.line('hans: line 61').waitFor({ state: 'attached' });
      expect(await yoda.onScreen(yoda.line('hans: line 1'), log)).toBe(true);
      expect(await yoda.onScreen(yoda.line('hans: line 61'), log)).toBe(false);

      // Back at the end, it follows new lines again.
      await yoda.page.mouse.wheel(0, 100_000);
      await eventually(() => yoda.onScreen(yoda.line('hans: line 61'), log), where);
      expect(await hans.command('message yoda line 62')).toMatchObject({ ok: true });
      await eventually(async () => (await yoda.onScreen(yoda.line('hans: line 62'), log)) && (await yoda.onScreen(input)), where);
      expect(await yoda.verticalOverflow()).toBeLessThanOrEqual(0);
    }, 90_000);
  }
});

describe('the "New messages" marker', () => {
  for (const size of sizes) {
    it(`at ${size.width}x${size.height} (${size.name}) shows while the reader is scrolled up and lines arrive, goes to the end when clicked or used from the keyboard, and never shows at the end`, async () => {
      const { yoda, hans } = await yodaAndHans(size);

      const log = yoda.log();
      const marker = yoda.page.getByRole('button', { name: 'New messages' });
      let last = 0;
      const receive = async (count = 1) => {
        for (let i = 0; i < count; i++) {
          last += 1;
          expect(await hans.command(`message yoda line ${last}`)).toMatchObject({ ok: true });
        }
        await yoda.line(`hans: line ${last}`).waitFor({ state: 'attached' });
      };
      const newest = () => yoda.line(`hans: line ${last}`);
      const where = async () =>
        `line ${last} on screen: ${await yoda.onScreen(newest(), log)}, line 1 on screen: ${await yoda.onScreen(yoda.line('hans: line 1'), log)}, ` +
        `marker visible: ${await marker.isVisible()}, focus on #${await yoda.focusedId()}`;
      const atEnd = async () => (await yoda.onScreen(newest(), log)) && !(await marker.isVisible());
      const markerShown = async () => (await marker.isVisible()) && (await yoda.onScreen(marker, log)) && !(await yoda.onScreen(newest(), log));

      // At the end, lines arrive and are followed: no marker.
      await receive(50);
      await eventually(() => yoda.onScreen(newest(), log), where);
      expect(await marker.isVisible(), await where()).toBe(false);
      await receive();
      await eventually(() => yoda.onScreen(newest(), log), where);
      expect(await marker.isVisible(), await where()).toBe(false);
      // Announced politely, as the log is.
      expect(await yoda.page.locator('.jump').getAttribute('aria-live')).toBe('polite');

      // Scrolled up with the mouse, a line arrives: the marker shows, pinned in the pane, and the view stays put.
      await log.hover();
      await yoda.page.mouse.wheel(0, -100_000);
      await eventually(() => yoda.onScreen(yoda.line('hans: line 1'), log), where);
      await receive();
      await eventually(markerShown, where);
      expect(await yoda.onScreen(yoda.line('hans: line 1'), log), await where()).toBe(true);
      // A click goes to the end, and the marker goes away.
      await marker.click();
      await eventually(atEnd, where);

      // Scrolled up from the keyboard (Home in the focused log), two lines arrive: Tab to the marker, Enter.
      await log.focus();
      await yoda.page.keyboard.press('Home');
      await eventually(() => yoda.onScreen(yoda.line('hans: line 1'), log), where);
      await receive(2);
      await eventually(markerShown, where);
      await yoda.page.keyboard.press('Tab');
      expect(await yoda.focusedId(), await where()).toBe('new-lines');
      await yoda.page.keyboard.press('Enter');
      await eventually(atEnd, where);
      // Focus is back on the conversation, not lost with the button.
      expect(await yoda.focusedId(), await where()).toBe('log');

      // Scrolled up, then back to the end by hand: the marker goes away too.
      await yoda.page.keyboard.press('Home');
      await eventually(() => yoda.onScreen(yoda.line('hans: line 1'), log), where);
      await receive();
      await eventually(markerShown, where);
      await yoda.page.keyboard.press('End');
      await eventually(atEnd, where);

      // At the end again, new lines bring no marker.
      await receive();
      await eventually(() => yoda.onScreen(newest(), log), where);
      expect(await marker.isVisible(), await where()).toBe(false);
    }, 90_000);
  }
});
