import { fail, texts } from '../replies.js';
import type { Handler } from '../types.js';

/*
 * private and stopprivate travel peer to peer, never through the server; the
 * command-line client handles them itself. Reaching the server means the
 * caller has no direct chat with that user.
 */
export const privateMessage: Handler = async (_ctx, [peer]) =>
  fail('private', 'p2p_unsupported', texts.privateNotEnabled(peer));

export const stopprivate: Handler = async (_ctx, [peer]) =>
  fail('stopprivate', 'p2p_unsupported', texts.privateNotEnabled(peer));
