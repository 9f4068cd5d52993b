import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * p2p [<host>] <port>: the command-line client advertises where it accepts
 * peers. The host defaults to the caller's address as the server sees it.
 */
export const p2p: Handler = async (ctx, args, session, caller) => {
  const [host, portText] = args.length === 2 ? args : [caller.address, args[0]];
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535 || host === '') {
    return fail('p2p', 'usage', texts.usage('p2p [<host>] <port>'));
  }
  await ctx.state.setPeerListener(session!.user, session!.token, host, port);
  return ok('p2p', '', { host, port });
};
