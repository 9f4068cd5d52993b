import type { ServerLink } from './connection.js';
import { clientTexts } from './render.js';
import type { Terminal } from './terminal.js';

/** Failed logins after which the server closes the connection (SPEC section 4). */
const maxFailures = 3;

export type LoginResult = { user: string } | { exitCode: number };

/**
 * The login dialogue of the assignment: `Username: ` then `Password: `. A
 * wrong password asks for the password again, an unknown or already
 * logged-in user for the username; a locked account or address, or the
 * third failure on this connection, ends the client.
 */
export async function logIn(terminal: Terminal, link: ServerLink): Promise<LoginResult> {
  let failures = 0;
  for (;;) {
    const user = await terminal.ask(clientTexts.username);
    if (user === null) return { exitCode: 1 };
    if (user.trim() === '') continue;
    for (;;) {
      const password = await terminal.ask(clientTexts.password, { secret: true });
      if (password === null) return { exitCode: 1 };
      const reply = await link.login(user.trim(), password, (answer) => terminal.print(answer.text));
      // The connection closed first: the link has said so.
      if (!reply) return { exitCode: 1 };
      if (reply.ok) return { user: String(reply.user) };
      if (reply.error === 'invalid_password' || reply.error === 'invalid_user') failures++;
      // The server has closed the connection (or is about to): nothing more to try here.
      if (failures >= maxFailures || reply.error === 'account_blocked' || reply.error === 'address_blocked') {
        return { exitCode: 1 };
      }
      if (reply.error === 'invalid_password' || reply.error === 'usage') continue;
      break;
    }
  }
}
