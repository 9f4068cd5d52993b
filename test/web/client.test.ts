import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';
import { startBrowser, type RunningBrowser } from './browser.js';
import { endTest, eventually, WebUser } from './pages.js';
import { fingerprint } from '../support/fingerprints.js';

/*
 * The web client (SPEC section 8) in Debian's headless chromium, against a
 * real server on the embedded store: browser users and TCP users talking to
 * each other, every text as the CLI shows it.
 */
let server: RunningServer;
let browser: RunningBrowser;
const webUsers: WebUser[] = [];
const tcpUsers: TcpClient[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([
    // A small backlog so that a client kept away long enough misses events (a gap).
    startServer({ args: ['--command-rate', '0', '--login-rate', '0', '--backlog', '20'] }),
    startBrowser(),
  ]);
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

async function web(username: string, password: string, viewport?: { width: number; height: number }): Promise<WebUser> {
  const user = await WebUser.open(browser.browser, server.http, viewport);
  webUsers.push(user);
  await user.login(username, password);
  return user;
}

async function tcp(username: string, password: string): Promise<TcpClient> {
  const client = await TcpClient.open(server.tcpPort);
  tcpUsers.push(client);
  expect(await client.command(`login ${username} ${password}`)).toMatchObject({ ok: true });
  return client;
}

function count(lines: string[], text: string): number {
  return lines.filter((line) => line === text).length;
}

describe('serving the page', () => {
  it('serves the page at / and its files under /assets/, with security headers', async () => {
    const page = await fetch(`${server.http}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.text();
    // Nothing from elsewhere: every script and style is the page's own.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).toContain('src="/assets/app.js"');

    const script = await fetch(`${server.http}/assets/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('x-content-type-options')).toBe('nosniff');
    const style = await fetch(`${server.http}/assets/style.css`);
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');

    const missing = await fetch(`${server.http}/assets/nothing.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: 'not_found' });
  });
});

describe('a conversation across browsers and the terminal', () => {
  it('two browser users and a TCP user message and broadcast each other, with live presence', async () => {
    const yoda = await web('yoda', 'wise');
    const luke = await web('luke', 'sunrise');
    await yoda.line('luke logged in').waitFor();
    await yoda.person('luke').waitFor();
    await luke.person('yoda').waitFor();

    const hans = await tcp('hans', 'falcon');
    for (const page of [yoda, luke]) {
      await page.line('hans logged in').waitFor();
      await page.person('hans').waitFor();
    }

    // A direct message picked through "To", one typed as a CLI line, one from the terminal.
    await yoda.type('Hey Dude', 'luke');
    await yoda.line('> message luke Hey Dude').waitFor();
    await luke.line('yoda: Hey Dude').waitFor();
    await luke.type('message hans Hi from the browser');
    expect(await hans.waitFor((m) => m.type === 'message')).toMatchObject({ from: 'luke', text: 'luke: Hi from the browser' });
    expect(await hans.command('message yoda Hi from the terminal')).toMatchObject({ ok: true, text: '' });
    await yoda.line('hans: Hi from the terminal').waitFor();

    // Broadcasts: typed as a CLI line in two browsers, and from the terminal.
    await yoda.type('broadcast Hello everyone');
    await luke.line('yoda: Hello everyone').waitFor();
    expect(await hans.waitFor((m) => m.type === 'broadcast')).toMatchObject({ text: 'yoda: Hello everyone' });
    await luke.type('broadcast Luke here');
    await yoda.line('luke: Luke here').waitFor();
    expect(await hans.command('broadcast Terminal here')).toMatchObject({ ok: true });
    await yoda.line('hans: Terminal here').waitFor();
    await luke.line('hans: Terminal here').waitFor();
    // The sender does not get their own broadcast back.
    expect(count(await yoda.lines(), 'yoda: Hello everyone')).toBe(0);

    // whoelse as typed: the CLI's text, one user per line.
    await luke.type('whoelse');
    await luke.line('yoda\nhans').waitFor();

    // Presence disappears: a TCP logout, then a browser logout.
    expect(await hans.command('logout')).toMatchObject({ ok: true });
    for (const page of [yoda, luke]) {
      await page.line('hans logged out').waitFor();
      await page.person('hans').waitFor({ state: 'detached' });
    }
    await luke.page.getByRole('button', { name: 'Log out' }).click();
    await luke.page.getByRole('alert').getByText('You have been logged out', { exact: true }).waitFor();
    await luke.page.getByRole('button', { name: 'Log in again' }).waitFor();
    // Said once in the conversation: by the reply; the session_end after it only closes.
    expect(count(await luke.lines(), 'You have been logged out')).toBe(1);
    expect(await luke.token()).toBeNull();
    await yoda.line('luke logged out').waitFor();
    await yoda.person('luke').waitFor({ state: 'detached' });
    await yoda.page.getByText('Nobody else is online.').waitFor();

    // Each line once: nothing repeated on the way.
    for (const text of ['luke logged in', 'hans logged in', 'hans: Hi from the terminal', 'luke: Luke here', 'hans logged out']) {
      expect(count(await yoda.lines(), text), text).toBe(1);
    }
  }, 90_000);

  it("refuses a blocked user's messages with the spec's text, and unblocks from the list", async () => {
    const leia = await web('leia', 'alderaan');
    const vader = await web('vader', 'sithlord');
    // The refusals below are error replies (403), shown from their text.
    vader.expectFailedRequests('/command', 403);
    await leia.person('vader').waitFor();

    await leia.page.getByRole('button', { name: 'Block vader' }).click();
    await leia.line('vader is blocked').waitFor();
    await leia.page.getByRole('button', { name: 'Unblock vader' }).waitFor();

    await vader.type('I am your father', 'leia');
    await vader.line('Your message could not be delivered as the recipient has blocked you').waitFor();
    await vader.type('broadcast Join me');
    await vader.line('> broadcast Join me').waitFor();

    await leia.page.getByRole('button', { name: 'Unblock vader' }).click();
    await leia.line('vader is unblocked').waitFor();
    await vader.type('message leia Now you hear me');
    await leia.line('vader: Now you hear me').waitFor();
    // Events arrive in order: had the refused ones been delivered, they would show by now.
    const lines = await leia.lines();
    expect(lines.some((line) => line.includes('I am your father') || line.includes('Join me'))).toBe(false);
  }, 60_000);

  it('shows the messages stored while the user was offline at login, marked as such', async () => {
    const obiwan = await tcp('obiwan', 'kenobi');
    expect(await obiwan.command('message r2d2 Help me')).toMatchObject({ ok: true });
    expect(await obiwan.command('message r2d2 You are my only hope')).toMatchObject({ ok: true });

    const r2d2 = await web('r2d2', 'beepboop');
    const stored = r2d2.page.locator('#log li.message:has(.tag)');
    await eventually(async () => (await stored.count()) === 2, async () => (await r2d2.lines()).join(' | '));
    expect(await stored.locator('.text').allTextContents()).toEqual(['obiwan: Help me', 'obiwan: You are my only hope']);
    expect(await stored.locator('.tag').allTextContents()).toEqual(['offline', 'offline']);
    const lines = await r2d2.lines();
    expect(lines.indexOf('obiwan: Help me')).toBeGreaterThan(lines.indexOf('Welcome to the greatest messaging application ever!'));

    // A message that arrives live is not marked.
    expect(await obiwan.command('message r2d2 Now, live')).toMatchObject({ ok: true });
    await r2d2.line('obiwan: Now, live').waitFor();
    expect(await r2d2.page.locator('#log li.message:has(.tag)').count()).toBe(2);
  }, 60_000);

  it('shows markup in a message as text and runs none of it', async () => {
    const c3po = await web('c3po', 'protocol');
    const chewy = await tcp('chewy', 'wookie');
    await c3po.person('chewy').waitFor();

    const img = '<img src=x onerror=alert(1)>';
    const script = '<script>alert(2)</script><b>bold</b>';
    expect(await chewy.command(`message c3po ${img}`)).toMatchObject({ ok: true });
    expect(await chewy.command(`broadcast ${script}`)).toMatchObject({ ok: true });
    await c3po.line(`chewy: ${img}`).waitFor();
    await c3po.line(`chewy: ${script}`).waitFor();

    // Sent from the browser, it leaves as typed.
    await c3po.type(img, 'chewy');
    expect(await chewy.waitFor((m) => m.type === 'message')).toMatchObject({ text: `c3po: ${img}` });

    // Had the markup become elements, they would be in the log by now (the
    // page's CSP would stop the handler; the elements themselves say it was
    // inserted as HTML).
    expect(await chewy.command('message c3po still here')).toMatchObject({ ok: true });
    await c3po.line('chewy: still here').waitFor();
    expect(await c3po.page.locator('#log img, #log script, #log b').count()).toBe(0);
    expect(c3po.dialogs).toEqual([]);
  }, 60_000);

  it('declines a private-chat request, which needs the command-line client', async () => {
    const yoda = await web('yoda', 'wise');
    const lando = await tcp('lando', 'cloudcity');
    expect(await lando.command(`p2p 127.0.0.1 9 ${fingerprint(1)}`)).toMatchObject({ ok: true });
    expect(await lando.command('startprivate yoda')).toMatchObject({ ok: true, text: 'Private messaging request sent to yoda' });
    expect(await lando.waitFor((m) => m.type === 'private_decline')).toMatchObject({ text: 'yoda declined private messaging' });
    await yoda.page.locator('#log .text', { hasText: 'lando asked to chat privately' }).waitFor();
  }, 60_000);
});

describe('the input line', () => {
  it('takes a line typed with "To" empty as a command line: a typo is an invalid command, not a broadcast', async () => {
    const yoda = await web('yoda', 'wise');
    const luke = await web('luke', 'sunrise');
    const hans = await tcp('hans', 'falcon');
    await yoda.person('luke').waitFor();
    await yoda.person('hans').waitFor();
    // The invalid command is answered 400, with the text the page shows.
    yoda.expectFailedRequests('/command', 400);

    await yoda.type('whoels');
    await yoda.line('> whoels').waitFor();
    await yoda.line('Error. Invalid command').waitFor();
    // A broadcast sent after it arrives; events come in order, so had the
    // typo gone out as a broadcast, it would have arrived first.
    await yoda.type('broadcast after the typo');
    await luke.line('yoda: after the typo').waitFor();
    expect(await hans.waitFor((m) => m.type === 'broadcast')).toMatchObject({ text: 'yoda: after the typo' });
    expect((await luke.lines()).filter((line) => line.includes('whoels'))).toEqual([]);
    expect(hans.received.filter((m) => String(m.text).includes('whoels'))).toEqual([]);

    // With a user in "To", the same words are a message to that user.
    await yoda.type('whoels', 'luke');
    await yoda.line('> message luke whoels').waitFor();
    await luke.line('yoda: whoels').waitFor();
  }, 60_000);

  it("learns the verbs from the server's GET /commands, not from a list of its own", async () => {
    // A blank page first, so that the route is in place before the client loads.
    const leia = await WebUser.open(browser.browser, 'data:text/html,');
    webUsers.push(leia);
    // The server's table with a verb added and `whoelse` left out, as a server
    // whose table differs from any list the page could carry would send it.
    let served = 0;
    await leia.page.route('**/commands', async (route) => {
      const response = await route.fetch();
      const { commands } = (await response.json()) as { commands: { verb: string; synopsis: string; session: boolean }[] };
      served += 1;
      await route.fulfill({
        response,
        json: { commands: [...commands.filter((c) => c.verb !== 'whoelse'), { verb: 'frobnicate', synopsis: 'frobnicate <thing>', session: true, typed: true }] },
      });
    });
    await leia.page.goto(`${server.http}/`);
    await leia.login('leia', 'alderaan');
    const chewy = await web('chewy', 'wookie');
    await leia.person('chewy').waitFor();
    // The server does not know `frobnicate`: an invalid command, answered 400.
    leia.expectFailedRequests('/command', 400);

    // With chewy in "To", a line starting with the added verb goes as typed...
    const sent = leia.page.waitForRequest((r) => new URL(r.url()).pathname === '/command' && r.postData() === 'frobnicate the widget');
    await leia.type('frobnicate the widget', 'chewy');
    await sent;
    await leia.line('> frobnicate the widget').waitFor();
    await leia.line('Error. Invalid command').waitFor();
    // ...and a line starting with the verb left out is a message to chewy.
    await leia.type('whoelse is here?', 'chewy');
    await leia.line('> message chewy whoelse is here?').waitFor();
    await chewy.line('leia: whoelse is here?').waitFor();
    // ...and so is one starting with a verb only clients send by themselves.
    await leia.type('touch base later', 'chewy');
    await leia.line('> message chewy touch base later').waitFor();
    await chewy.line('leia: touch base later').waitFor();
    // Messages arrive in order: had the first line been sent as one, it would be there.
    expect((await chewy.lines()).filter((line) => line.includes('frobnicate'))).toEqual([]);
    expect(served).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('while the verbs cannot be had, sends a line for a user in "To" as typed, never as a message, and asks again', async () => {
    const lando = await WebUser.open(browser.browser, 'data:text/html,');
    webUsers.push(lando);
    let asked = 0;
    await lando.page.route('**/commands', (route) => {
      asked += 1;
      return route.abort('failed');
    });
    lando.expectFailedRequests('/commands', /^net::ERR_FAILED$/);
    lando.expectFailedRequests('/command', 400);
    await lando.page.goto(`${server.http}/`);
    await lando.login('lando', 'cloudcity');
    const obiwan = await web('obiwan', 'kenobi');
    await lando.person('obiwan').waitFor();
    await eventually(async () => asked >= 1, () => `asked ${asked} times`);

    // Unknown verbs: asked once more, then sent as typed, for the server to judge.
    const before = asked;
    await lando.type('hello there', 'obiwan');
    await lando.line('> hello there').waitFor();
    await lando.line('Error. Invalid command').waitFor();
    expect(asked).toBe(before + 1);
    // A real command line still works as one.
    await lando.type('message obiwan typed in full', 'obiwan');
    await obiwan.line('lando: typed in full').waitFor();
    expect((await obiwan.lines()).filter((line) => line.includes('hello there'))).toEqual([]);

    // Once the server answers, the next line learns the verbs and is a message again.
    await lando.page.unroute('**/commands');
    await lando.type('hello again', 'obiwan');
    await lando.line('> message obiwan hello again').waitFor();
    await obiwan.line('lando: hello again').waitFor();
  }, 60_000);
});

describe('reconnecting', () => {
  it('after a network drop, carries on from its cursor with nothing lost or repeated, and reports a gap', async () => {
    const leia = await web('leia', 'alderaan');
    const han = await tcp('hans', 'falcon');
    await leia.person('hans').waitFor();

    // The network goes: the poll held now still answers, the next ones fail.
    leia.expectFailedRequests('/events', /^net::ERR_INTERNET_DISCONNECTED$/);
    await leia.page.route('**/events?*', (route) => route.abort('internetdisconnected'));
    expect(await han.command('message leia one')).toMatchObject({ ok: true });
    await leia.line('Connection lost. Reconnecting...').waitFor();
    for (const text of ['two', 'three', 'four']) expect(await han.command(`message leia ${text}`)).toMatchObject({ ok: true });
    await leia.page.unroute('**/events?*');
    await leia.line('Reconnected.').waitFor();
    await leia.line('hans: four').waitFor();
    let lines = await leia.lines();
    const said = ['hans: one', 'hans: two', 'hans: three', 'hans: four'];
    for (const text of said) expect(count(lines, text), text).toBe(1);
    expect(said.map((text) => lines.indexOf(text))).toEqual(said.map((text) => lines.indexOf(text)).sort((a, b) => a - b));

    // A reload keeps the session and the conversation; nothing is fetched twice.
    await leia.page.reload();
    await leia.line('hans: four').waitFor();
    expect(await han.command('message leia five')).toMatchObject({ ok: true });
    await leia.line('hans: five').waitFor();
    lines = await leia.lines();
    for (const text of [...said, 'hans: five']) expect(count(lines, text), text).toBe(1);

    // Away for longer than the server keeps events (backlog 20): told so.
    await leia.page.route('**/events?*', (route) => route.abort('internetdisconnected'));
    expect(await han.command('message leia six')).toMatchObject({ ok: true });
    await leia.line('hans: six').waitFor();
    await eventually(
      async () => count(await leia.lines(), 'Connection lost. Reconnecting...') === 2,
      async () => (await leia.lines()).join(' | '),
    );
    for (let i = 0; i < 30; i++) expect(await han.command(`message leia flood ${i}`)).toMatchObject({ ok: true });
    await leia.page.unroute('**/events?*');
    await leia.line('hans: flood 29').waitFor();
    await leia.line('Some earlier events were missed: the server no longer keeps them').waitFor();
    lines = await leia.lines();
    // Said once, where the loss happened: after what was read, before what was kept.
    const gapAt = lines.indexOf('Some earlier events were missed: the server no longer keeps them');
    expect(count(lines, lines[gapAt])).toBe(1);
    expect(gapAt).toBeGreaterThan(lines.indexOf('hans: six'));
    expect(gapAt).toBeLessThan(lines.indexOf('hans: flood 29'));
    expect(count(lines, 'hans: flood 0')).toBe(0);
    for (let i = 10; i < 30; i++) expect(count(lines, `hans: flood ${i}`)).toBe(1);
  }, 90_000);
});

describe('keyboard and phone width', () => {
  it('logs in and sends with the keyboard alone, and fits a phone screen', async () => {
    const phone = await WebUser.open(browser.browser, server.http, { width: 375, height: 700 });
    webUsers.push(phone);
    const page = phone.page;
    // A wrong password is answered 401, with the text the page shows.
    phone.expectFailedRequests('/login', 401);
    // The page opens with the username field focused.
    await eventually(async () => (await phone.focusedId()) === 'username', () => 'focus on username');
    await page.keyboard.type('lando');
    await page.keyboard.press('Tab');
    await page.keyboard.type('wrong');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').getByText('Invalid Password. Please try again').waitFor();
    // As the CLI: only the password is asked again.
    expect(await phone.focusedId()).toBe('password');
    await page.keyboard.type('cloudcity');
    await page.keyboard.press('Enter');
    await phone.line('Welcome to the greatest messaging application ever!').waitFor();
    await eventually(async () => (await phone.focusedId()) === 'line', () => 'focus on the input line');
    await page.keyboard.type('whoelsesince 60');
    await page.keyboard.press('Enter');
    await phone.line('> whoelsesince 60').waitFor();

    expect(await phone.horizontalOverflow()).toBeLessThanOrEqual(0);
  }, 60_000);
});
