// The browser client (SPEC section 8): log in, follow the conversation by
// long-polling /events, send what the user types. Every line it shows is the
// `text` of a reply or an event, as the CLI would print it; the few lines of
// its own (connection, declined private chat) say what the page did.

import * as api from './api.js';
import { blockTarget, commandLine, knowsVerbs, learnVerbs } from './composer.js';
import { backoff, startPoller } from './poller.js';
import * as store from './store.js';
import { lineElement, optionElement, personElement } from './view.js';

const notices = {
  connectionLost: 'Connection lost. Reconnecting...',
  reconnected: 'Reconnected.',
  unreachable: 'Could not reach the server. Please try again.',
  unconfirmed: (verb) => `The connection was lost before "${verb}" was answered: it may not have been done`,
  privateDeclined: (user) =>
    `${user} asked to chat privately; private chat needs the command-line client, so the request was declined.`,
  missingFields: 'Please enter a username and a password.',
};

const $ = (id) => document.getElementById(id);
const ui = {
  me: $('me'),
  logout: $('logout'),
  loginView: $('login-view'),
  loginForm: $('login-form'),
  loginStatus: $('login-status'),
  username: $('username'),
  password: $('password'),
  chatView: $('chat-view'),
  ended: $('ended'),
  endedText: $('ended-text'),
  again: $('again'),
  online: $('online'),
  nobody: $('nobody'),
  names: $('online-names'),
  log: $('log'),
  newLines: $('new-lines'),
  composer: $('composer'),
  to: $('to'),
  line: $('line'),
};

/** The session being shown: { user, token, cursor }, or null. */
let session = null;
let poller = null;
let lines = [];
const online = new Set();
let blocked = new Set();

ui.loginForm.addEventListener('submit', (e) => {
  e.preventDefault();
  void logIn();
});
ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.line.value;
  const to = ui.to.value;
  if (text.trim() === '') return;
  ui.line.value = '';
  submit(text, to);
});
ui.logout.addEventListener('click', () => void send('logout'));
ui.again.addEventListener('click', () => showLogin(''));

// The conversation follows new lines while the user is at its end. Once they
// scroll up to read older lines it stays where they put it, until they
// scroll back to the end or send a line themselves. Lines that arrive
// meanwhile show the "New messages" button, which goes to the end; it goes
// away once the end is in view again, however the user got there.
const endSlack = 40;
let following = true;
const atEnd = () => ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < endSlack;
const scrollToEnd = () => {
  ui.log.scrollTop = ui.log.scrollHeight;
};
const resumeFollowing = () => {
  following = true;
  ui.newLines.hidden = true;
};
ui.log.addEventListener('scroll', () => {
  if (atEnd()) resumeFollowing();
  else following = false;
});
ui.newLines.addEventListener('click', () => {
  resumeFollowing();
  scrollToEnd();
  // The button is gone: focus goes to the conversation it showed, not to the page.
  ui.log.focus({ preventScroll: true });
});
// The pane changes size (window resized, chat shown, banner above it): keep its end in view.
new ResizeObserver(() => {
  if (following) scrollToEnd();
}).observe(ui.log);

// The server's verbs, which tell a command from a message (composer.js).
void learnVerbs(api.commands);

const saved = store.loadSession();
if (saved) {
  session = saved;
  showChat();
  for (const entry of store.loadLog()) addLine(entry, false);
  void follow();
} else {
  showLogin('');
}

async function logIn() {
  const username = ui.username.value.trim();
  const password = ui.password.value;
  if (username === '' || password === '') {
    ui.loginStatus.textContent = notices.missingFields;
    (username === '' ? ui.username : ui.password).focus();
    return;
  }
  const button = ui.loginForm.querySelector('button');
  button.disabled = true;
  ui.loginStatus.textContent = '';
  let answer;
  try {
    answer = await api.login(username, password);
  } catch {
    ui.loginStatus.textContent = notices.unreachable;
    return;
  } finally {
    button.disabled = false;
  }
  const reply = answer.body;
  if (!reply.ok || typeof reply.token !== 'string' || typeof reply.cursor !== 'string') {
    ui.loginStatus.textContent = reply.text;
    // A wrong password asks again for the password only, as the CLI does.
    if (reply.error === 'invalid_password') {
      ui.password.value = '';
      ui.password.focus();
    } else {
      ui.username.select();
    }
    return;
  }
  ui.password.value = '';
  session = { user: typeof reply.user === 'string' ? reply.user : username, token: reply.token, cursor: reply.cursor };
  store.clearSession();
  store.saveSession(session);
  lines = [];
  ui.log.replaceChildren();
  resumeFollowing();
  showChat();
  addLine({ kind: 'reply', text: reply.text });
  await follow();
}

/**
 * Seeds the online list with `whoelse`, then polls from the session's
 * cursor. In that order, every presence event after the cursor is applied
 * after the snapshot, so the list ends in the latest state.
 */
async function follow() {
  const current = session;
  blocked = store.loadBlocked(current.user);
  if (!(await seedOnline(current)) || session !== current) return;
  poller = startPoller({
    token: current.token,
    cursor: current.cursor,
    onEvents(events, cursor) {
      for (const event of events) onEvent(event);
      if (session !== current) return;
      current.cursor = cursor;
      store.saveSession(current);
    },
    onConnection(up, text) {
      addLine({ kind: 'notice', text: up ? notices.reconnected : text || notices.connectionLost });
    },
    onEnded: (text) => end(text),
  });
}

/** `whoelse` until it is answered; false if the session turned out to be over. */
async function seedOnline(current) {
  for (let failures = 0; session === current; ) {
    try {
      const { status, body } = await api.command(current.token, 'whoelse');
      if (status === 401 && body.error === 'not_logged_in') {
        end(body.text);
        return false;
      }
      if (body.ok && Array.isArray(body.users)) {
        if (failures > 0) addLine({ kind: 'notice', text: notices.reconnected });
        online.clear();
        for (const user of body.users) online.add(user);
        ui.online.setAttribute('aria-busy', 'false');
        renderOnline();
        return true;
      }
    } catch {
      // Unreachable: retry below.
    }
    failures += 1;
    if (failures === 1) addLine({ kind: 'notice', text: notices.connectionLost });
    await new Promise((resolve) => setTimeout(resolve, backoff(failures)));
  }
  return false;
}

function onEvent(event) {
  switch (event.type) {
    case 'message':
      addLine({ kind: 'message', text: event.text, at: event.at, offline: event.offline === true });
      break;
    case 'broadcast':
      addLine({ kind: 'broadcast', text: event.text, at: event.at });
      break;
    case 'presence':
      addLine({ kind: 'presence', text: event.text, at: event.at });
      if (event.user !== session?.user) {
        if (event.state === 'in') online.add(event.user);
        else online.delete(event.user);
        renderOnline();
      }
      break;
    case 'private_request':
      // Peer-to-peer chat needs a listening socket, which a page cannot have.
      addLine({ kind: 'notice', text: notices.privateDeclined(event.from), at: event.at });
      if (session) api.command(session.token, `declineprivate ${event.from}`).catch(() => undefined);
      break;
    case 'gap':
      // The server's own words, where the loss happened; presence events
      // may be among what was lost, so the online list is asked for again.
      addLine({ kind: 'notice', text: event.text, at: event.at });
      if (session) void seedOnline(session);
      break;
    case 'session_end':
      // The poller keeps a shutdown notice (the session goes on) to itself:
      // every session_end that reaches this point ends the session.
      end(event.text, event.at);
      break;
    default:
      if (event.text) addLine({ kind: 'notice', text: event.text, at: event.at });
  }
}

/** Lines waiting for the server's verbs: settles once they have been sent. */
let held = null;

/**
 * Sends what the user typed. A line for a user in "To" needs the server's
 * verbs to tell a command from a message: if they have not arrived, it asks
 * once more first (composer.js says what happens if that fails too). Lines
 * typed meanwhile wait behind it, so they go in the order typed.
 */
function submit(text, to) {
  if (!held && (to.trim() === '' || knowsVerbs())) {
    void send(commandLine(text, to));
    return;
  }
  const mine = (held ?? Promise.resolve())
    .then(() => (to.trim() === '' ? true : learnVerbs(api.commands)))
    .then(() => {
      void send(commandLine(text, to));
    });
  held = mine;
  void mine.finally(() => {
    if (held === mine) held = null;
  });
}

/**
 * Sends a command line and shows what the CLI would: the line as typed,
 * then the reply's text (nothing when the CLI prints nothing).
 */
async function send(line) {
  const current = session;
  if (!current) return;
  addLine({ kind: 'own', text: `> ${line}`, at: Date.now() });
  let answer;
  try {
    answer = await api.command(current.token, line);
  } catch {
    addLine({ kind: 'error', text: notices.unconfirmed(line.split(' ', 1)[0]) });
    return;
  }
  const reply = answer.body;
  if (reply.text) addLine({ kind: reply.ok ? 'reply' : 'error', text: reply.text });
  const target = blockTarget(line);
  if (target && session === current) {
    const [verb, user] = target;
    // "already blocked" / "was not blocked" also tell us where things stand.
    const known = reply.ok || reply.error === (verb === 'block' ? 'already_blocked' : 'not_blocked');
    if (known) {
      if (verb === 'block') blocked.add(user);
      else blocked.delete(user);
      store.saveBlocked(current.user, blocked);
      renderOnline();
    }
  }
}

/** The session is over: say why, stop polling, keep the conversation readable. */
function end(text, at) {
  if (!session) return;
  poller?.stop();
  poller = null;
  session = null;
  store.clearSession();
  addLine({ kind: 'notice', text, at }, false);
  online.clear();
  renderOnline();
  ui.endedText.textContent = text;
  ui.ended.hidden = false;
  ui.me.hidden = true;
  ui.logout.hidden = true;
  for (const control of ui.composer.elements) control.disabled = true;
  ui.again.focus();
}

function showLogin(status) {
  ui.chatView.hidden = true;
  ui.loginView.hidden = false;
  ui.me.hidden = true;
  ui.logout.hidden = true;
  ui.loginStatus.textContent = status;
  (ui.username.value ? ui.password : ui.username).focus();
}

function showChat() {
  ui.loginView.hidden = true;
  ui.chatView.hidden = false;
  ui.ended.hidden = true;
  ui.me.textContent = `Logged in as ${session.user}`;
  ui.me.hidden = false;
  ui.logout.hidden = false;
  for (const control of ui.composer.elements) control.disabled = false;
  // Until whoelse answers, an empty list does not mean nobody is online.
  ui.online.setAttribute('aria-busy', 'true');
  renderOnline();
  ui.line.focus();
}

function renderOnline() {
  const users = [...online].sort();
  ui.online.replaceChildren(
    ...users.map((user) =>
      personElement(user, blocked.has(user), {
        onPick(name) {
          ui.to.value = name;
          ui.line.focus();
        },
        onBlock(name, verb) {
          void send(`${verb} ${name}`);
        },
      }),
    ),
  );
  ui.names.replaceChildren(...users.map(optionElement));
  ui.nobody.hidden = users.length > 0 || ui.online.getAttribute('aria-busy') === 'true';
}

function addLine(entry, keep = true) {
  ui.log.append(lineElement(entry));
  if (entry.kind === 'own') resumeFollowing();
  if (following) scrollToEnd();
  else ui.newLines.hidden = false;
  lines.push(entry);
  if (keep && session) store.saveLog(lines);
}
