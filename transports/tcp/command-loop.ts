import type { Reply } from '../../handlers/types.js';
import type { Framed } from './line-framer.js';
import type { Output } from './output.js';

/** What the loop runs lines through: the connection, which knows its caller and session. */
export interface Commands {
  /** The reply to one framed line: the command's, or the refusal the framer made. */
  run(item: Framed): Promise<Reply>;
  /** Sends a reply and does what it asks; false when the connection is closing and no more lines run. */
  answer(reply: Reply): Promise<boolean>;
}

/**
 * The second piece of a TCP connection: lines to replies, one command at a
 * time, so replies keep command order. A line is taken only when the
 * previous reply is out and the socket has room: a client that sends
 * without reading is held back (its lines wait in the framer, then in TCP),
 * not answered into this process's memory.
 */
export async function runCommands(lines: AsyncIterable<Framed>, output: Output, commands: Commands): Promise<void> {
  for await (const item of lines) {
    if (output.full) await output.drained();
    if (!output.open) return;
    const reply = await commands.run(item);
    if (!(await commands.answer(reply))) return;
  }
}
