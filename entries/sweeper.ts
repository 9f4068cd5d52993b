import { sweepSessions } from '../handlers/sweep.js';
import type { Context } from '../handlers/types.js';
import type { Metrics } from '../transports/metrics.js';

/**
 * Runs the inactivity sweep every `intervalMs` on this replica. Every replica
 * runs one; the claim inside the sweep makes each timeout happen once.
 */
export function startSweeper(ctx: Context, metrics: Metrics, intervalMs: number): () => void {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await sweepOnce(ctx, metrics);
    } catch (err) {
      ctx.log?.('warn', 'inactivity sweep failed', { err });
    } finally {
      running = false;
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** One sweep (inactivity and session lifetime), counted and logged: what the sweeper runs each interval and the Worker's cron each minute. */
export async function sweepOnce(ctx: Context, metrics: Metrics): Promise<void> {
  const { timedOut, expired } = await sweepSessions(ctx);
  metrics.timeouts.inc(timedOut.length);
  metrics.expirations.inc(expired.length);
  for (const user of timedOut) ctx.log?.('info', 'session timed out', { user });
  for (const user of expired) ctx.log?.('info', 'session reached its lifetime', { user });
}
