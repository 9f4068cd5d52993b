import { ok } from '../replies.js';
import type { Handler } from '../types.js';

const pong = { type: 'pong' };

/** ping (SPEC section 4): answers `{"type":"pong"}`; needs no session and is not activity. */
export const ping: Handler = async () => ok('ping', '', { effects: { answer: pong } });
