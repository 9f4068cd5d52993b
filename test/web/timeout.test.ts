import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { startBrowser, type RunningBrowser } from './browser.js';
import { closeUsers, WebUser } from './pages.js';

/*
 * SPEC sections 2 and 8: a session idle for `timeout` seconds is logged out
 * by the server, and the page says so (long-polling is not activity).
 */
let server: RunningServer;
let browser: RunningBrowser;
const webUsers: WebUser[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([
    // block_duration 60, timeout 3 seconds.
    startServer({ positional: ['60', '3'], args: ['--command-rate', '0', '--login-rate', '0', '--sweep-interval', '200'] }),
    startBrowser(),
  ]);
});

// Fails the test if a page logged an error it did not expect.
afterEach(() => closeUsers(webUsers.splice(0), server.http));

afterAll(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

describe('inactivity timeout', () => {
  it('tells the user they were logged out due to inactivity, and others see them go', async () => {
    const leia = await WebUser.open(browser.browser, server.http);
    webUsers.push(leia);
    await leia.login('leia', 'alderaan');
    const hans = await TcpClient.open(server.tcpPort);
    let keepAlive: NodeJS.Timeout | undefined;
    try {
      expect(await hans.command('login hans falcon')).toMatchObject({ ok: true });
      // hans stays active (whoelse is a command), so he is still there to see leia go.
      keepAlive = setInterval(() => hans.send('whoelse'), 500);
      await leia.person('hans').waitFor();

      await leia.page.getByRole('alert').getByText('You have been logged out due to inactivity', { exact: true }).waitFor({ timeout: 20_000 });
      await leia.line('You have been logged out due to inactivity').waitFor();
      await leia.page.getByRole('button', { name: 'Log in again' }).waitFor();
      expect(await leia.page.getByLabel('Message or command').isDisabled()).toBe(true);
      expect(await leia.token()).toBeNull();
      expect(await hans.waitFor((m) => m.type === 'presence' && m.user === 'leia')).toMatchObject({ text: 'leia logged out', reason: 'timeout' });

      // Logging in again works from the same page.
      await leia.page.getByRole('button', { name: 'Log in again' }).click();
      await leia.login('leia', 'alderaan');
    } finally {
      clearInterval(keepAlive);
      hans.close();
    }
  }, 60_000);
});
