#!/usr/bin/env node
import { defaultConfig } from '../handlers/types.js';
import { operator } from '../handlers/operator.js';
import { importUsers, isUsername } from '../handlers/users.js';
import { openState } from '../state/connect.js';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createContext } from './context.js';
import { isPasswordCost } from './args.js';
import { parseCredentials } from './credentials.js';

const usage = `Usage: npm run users -- <command> [--redis URL]
  list                       the users in the store
  add <user> [<password>]    a new user
  reset <user> [<password>]  a new password (also lifts a login lock); ends the user's live session
  remove <user>              the user, their inbox, blocks and session; ends the live session first
  logout <user>              ends the user's live session, on whichever replica serves it
  import <file>              users of a credentials file not yet in the store
The store is REDIS_URL or --redis (anywhere on the line); a running server
sees changes at once, and a live session that loses its access ends within a
second with a session_end that says why. Without a password on the line (where
ps and the shell history would show it), it is asked for, unseen, on a
terminal, or read from the first line of standard input:
  printf '%s\n' "$PASSWORD" | npm run users -- reset ana
A password on the line that starts with "-" goes after "--":
  npm run users -- reset ana -- -s3cret
New hashes cost what IM_PASSWORD_COST says (the server's --password-cost;
131072 by default).
(The embedded store lives inside the server process: send that process
SIGHUP to re-read its credentials file instead.)`;

/** The management command (SPEC section 1): users change without a restart. */
async function main(argv: string[]): Promise<number> {
  let line;
  try {
    line = parseArgs({ args: argv, options: { redis: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`error: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}\n${usage}\n`);
    return 2;
  }
  if (line.values.help) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  const url = line.values.redis ?? process.env.REDIS_URL ?? '';
  const words = line.positionals;
  const [command, user] = words;
  const arity: Record<string, number[]> = { list: [1], add: [2, 3], reset: [2, 3], remove: [2], logout: [2], import: [2] };
  if (!command || !arity[command]?.includes(words.length) || !url) {
    process.stderr.write(`${url ? '' : 'error: no store given (REDIS_URL or --redis)\n'}${usage}\n`);
    return 2;
  }
  if (['add', 'reset', 'remove', 'logout'].includes(command) && !isUsername(user)) {
    process.stderr.write(`error: "${user}" is not a valid username (1-32 of A-Z a-z 0-9 _ . -)\n`);
    return 2;
  }
  let password = words[2];
  if ((command === 'add' || command === 'reset') && password === undefined) {
    const read = await readPassword();
    if (!read) {
      process.stderr.write('error: no password given (on the line, at the prompt, or on standard input)\n');
      return 2;
    }
    password = read;
  }
  const cost = Number(process.env.IM_PASSWORD_COST || defaultConfig.passwordCost);
  if (!isPasswordCost(cost)) {
    process.stderr.write(`error: IM_PASSWORD_COST is a power of two from 1024 to 1048576, got "${process.env.IM_PASSWORD_COST}"\n`);
    return 2;
  }
  const { state } = openState(url, (message) => process.stderr.write(message + '\n'));
  const ctx = createContext(state, { ...defaultConfig, passwordCost: cost });
  try {
    switch (command) {
      case 'list':
        process.stdout.write((await state.listUsers()).map((u) => u + '\n').join(''));
        return 0;
      case 'add': {
        const added = await importUsers(ctx, [{ user, password }]);
        process.stdout.write(added.length ? `${user} added\n` : `${user} already exists\n`);
        return added.length ? 0 : 1;
      }
      case 'reset': {
        const done = await operator.resetPassword(ctx, user, password);
        process.stdout.write(done ? `${user}'s password reset\n` : `no such user ${user}\n`);
        return done ? 0 : 1;
      }
      case 'remove': {
        const done = await operator.remove(ctx, user);
        process.stdout.write(done ? `${user} removed\n` : `no such user ${user}\n`);
        return done ? 0 : 1;
      }
      case 'logout': {
        const done = await operator.logout(ctx, user);
        process.stdout.write(done ? `${user} logged out\n` : `${user} has no live session\n`);
        return done ? 0 : 1;
      }
      default: {
        const { entries, problems } = parseCredentials(await readFile(user, 'utf8'));
        for (const p of problems) process.stderr.write(`${user} ${p}; skipped\n`);
        const added = await importUsers(ctx, entries);
        process.stdout.write(`${added.length} of ${entries.length} users added\n`);
        return 0;
      }
    }
  } finally {
    await state.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

/**
 * The password, from a prompt that does not echo it (a terminal) or the
 * first line of standard input (a pipe); '' when there is none.
 */
async function readPassword(): Promise<string> {
  const input = process.stdin;
  if (input.isTTY) process.stderr.write('Password: ');
  if (input.isTTY) input.setRawMode(true);
  let text = '';
  try {
    for await (const chunk of input) {
      text += String(chunk);
      const end = text.search(/[\r\n\u0003\u0004]/);
      if (end >= 0) {
        if (text[end] === '\u0003') text = '';
        text = text.slice(0, end);
        break;
      }
    }
  } finally {
    if (input.isTTY) {
      input.setRawMode(false);
      process.stderr.write('\n');
    }
    input.pause();
  }
  return text;
}

