import { commands, dispatch, dispatchArgs, pollVerb } from '../handlers/registry.js';
import type { Caller, Context, Reply } from '../handlers/types.js';
import type { Metrics, Transport } from './metrics.js';

const knownVerbs = new Set([...commands.map((row) => row.verb), pollVerb]);

/**
 * Runs one command (a line, or a verb with its arguments apart) for a
 * transport through the command table, and
 * records what an operator sees of it: the command counter and latency, the
 * limits and login failures it hit, and one debug log line. Never the line
 * itself: it may hold a password or a private message.
 */
export async function runCommand(
  ctx: Context,
  metrics: Metrics,
  transport: Transport,
  caller: Caller,
  command: string | { verb: string; args: string[] },
): Promise<Reply> {
  const started = performance.now();
  const reply = await (typeof command === 'string' ? dispatch(ctx, caller, command) : dispatchArgs(ctx, caller, command.verb, command.args));
  recordReply(ctx, metrics, transport, caller, reply, (performance.now() - started) / 1000);
  return reply;
}

/** Records a reply (also one a transport made itself, for a line it could not read). */
export function recordReply(ctx: Context, metrics: Metrics, transport: Transport, caller: Caller, reply: Reply, seconds: number): void {
  // Only known verbs become label values: a client must not be able to
  // create a time series per word it types.
  const verb = knownVerbs.has(reply.cmd) ? reply.cmd : 'unknown';
  const outcome = reply.ok ? 'ok' : String(reply.error);
  metrics.commands.inc({ verb, outcome, transport });
  metrics.commandSeconds.observe({ transport }, seconds);
  if (reply.error === 'rate_limited') metrics.rateLimited.inc({ limit: verb === 'login' ? 'login' : 'command' });
  if (verb === 'login' && !reply.ok) {
    metrics.loginFailures.inc({ reason: outcome });
    // The failure that locked an account or an address says which (`locked`).
    if (reply.locked === 'account' || reply.locked === 'address') metrics.locks.inc({ kind: reply.locked });
  }
  ctx.log?.('debug', 'command', {
    transport,
    user: caller.session?.user ?? (typeof reply.user === 'string' ? reply.user : undefined),
    verb,
    outcome,
    ms: Math.round(seconds * 100_000) / 100,
  });
}
