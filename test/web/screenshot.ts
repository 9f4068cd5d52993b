/**
 * Takes the README's screenshots of the web client from a scripted
 * conversation, with the same tooling as the browser tests:
 *
 *     npx tsx test/web/screenshot.ts     # writes docs/web-client*.png
 */
import { join } from 'node:path';
import { root, startServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { startBrowser } from './browser.js';
import { WebUser } from './pages.js';

const server = await startServer({ args: ['--command-rate', '0', '--login-rate', '0'] });
const browser = await startBrowser();
try {
  const hans = await TcpClient.open(server.tcpPort);
  await hans.command('login hans falcon');
  await hans.command('message yoda Are you there? The council is waiting.');
  await hans.command('logout');

  const yoda = await WebUser.open(browser.browser, server.http, { width: 960, height: 560 });
  await yoda.login('yoda', 'wise');
  const luke = await WebUser.open(browser.browser, server.http, { width: 390, height: 700 });
  await luke.login('luke', 'sunrise');
  const leia = await TcpClient.open(server.tcpPort);
  await leia.command('login leia alderaan');
  await yoda.person('leia').waitFor();

  await luke.type('Hey Dude', 'yoda');
  await yoda.line('luke: Hey Dude').waitFor();
  await yoda.type('Do or do not. There is no try.', 'luke');
  await luke.line('yoda: Do or do not. There is no try.').waitFor();
  await leia.command('broadcast Briefing in hangar 3 at noon');
  await yoda.line('leia: Briefing in hangar 3 at noon').waitFor();
  // With "To" empty the line is a command, as typed: a broadcast says so.
  await yoda.type('broadcast Late I will be. Start without me, you must.');
  await luke.line('yoda: Late I will be. Start without me, you must.').waitFor();
  await yoda.type('whoelse');
  await yoda.line('luke\nleia').waitFor();
  await luke.line('leia: Briefing in hangar 3 at noon').waitFor();

  await yoda.page.screenshot({ path: join(root, 'docs', 'web-client.png') });
  await luke.page.screenshot({ path: join(root, 'docs', 'web-client-phone.png') });
  await leia.command('logout');
  leia.close();
  await yoda.close(server.http);
  await luke.close(server.http);
} finally {
  await browser.close();
  await server.stop();
}
