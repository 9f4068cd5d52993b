// DOM building. Every text that came from the server or a user goes in
// through textContent (or a text node), never as HTML.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/**
 * One line of the conversation: { kind, text, at, offline }. `kind` is
 * message, broadcast, presence, reply, error, own or notice.
 */
export function lineElement(entry) {
  const li = document.createElement('li');
  li.className = `line ${entry.kind}`;
  if (typeof entry.at === 'number') {
    const time = document.createElement('time');
    const at = new Date(entry.at);
    time.dateTime = at.toISOString();
    time.textContent = timeFormat.format(at);
    li.append(time, ' ');
  }
  if (entry.offline) {
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = 'offline';
    tag.title = 'Sent while you were away';
    li.append(tag, ' ');
  }
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = entry.text;
  li.append(text);
  return li;
}

/**
 * One row of the online list: the name (picks the user as recipient) and a
 * block/unblock button.
 */
export function personElement(user, isBlocked, { onPick, onBlock }) {
  const li = document.createElement('li');
  li.className = isBlocked ? 'person blocked' : 'person';
  li.dataset.user = user;
  const pick = document.createElement('button');
  pick.type = 'button';
  pick.className = 'pick';
  pick.textContent = user;
  pick.setAttribute('aria-label', `Write to ${user}`);
  pick.addEventListener('click', () => onPick(user));
  const block = document.createElement('button');
  block.type = 'button';
  block.className = 'block';
  block.textContent = isBlocked ? 'Unblock' : 'Block';
  block.setAttribute('aria-label', `${isBlocked ? 'Unblock' : 'Block'} ${user}`);
  block.addEventListener('click', () => onBlock(user, isBlocked ? 'unblock' : 'block'));
  li.append(pick, block);
  return li;
}

export function optionElement(user) {
  const option = document.createElement('option');
  option.value = user;
  return option;
}
