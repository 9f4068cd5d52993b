import { ok } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * touch: the command-line client's way of saying the user did something the
 * server never sees (private, stopprivate). The registry resets the idle timer.
 */
export const touch: Handler = async () => ok('touch');
