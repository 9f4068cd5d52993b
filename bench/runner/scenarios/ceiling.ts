import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { cpuShare, sample, start, startRedis } from '../processes.js';
import { progress } from '../progress.js';
import { round } from '../redis-stats.js';
import type { ScenarioContext, ScenarioResult } from '../scenario.js';

const SCRIPT = readFileSync(fileURLToPath(new URL('../../ceiling/message-like.lua', import.meta.url)), 'utf8');

export interface CeilingRun {
  name: string;
  pipeline: number;
  requestsPerSecond: number;
  avgLatencyMs: number | null;
  p99LatencyMs: number | null;
  redisCpu: number;
  command: string;
}

/** Runs redis-benchmark once and reads its CSV line. */
async function benchmark(port: number, name: string, pipeline: number, requests: number, clients: number, command: string[]): Promise<CeilingRun> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-n', String(requests), '-c', String(clients), '-P', String(pipeline), '-r', '100', '--csv', ...command];
  const child = start('redis-benchmark', process.env.REDIS_BENCHMARK ?? 'redis-benchmark', args, tmpdir());
  await child.exited;
  if (child.child.exitCode !== 0) throw new Error(`redis-benchmark failed:\n${child.output()}`);
  const lines = child.output().trim().split('\n').filter((l) => l.startsWith('"'));
  const header = (lines[0] ?? '').split(',').map((c) => c.replace(/"/g, ''));
  // The first column repeats the command, commas and quotes unescaped: read the numeric columns from the end.
  const values = (lines[lines.length - 1] ?? '').split(',').slice(-(header.length - 1)).map((c) => c.replace(/"/g, ''));
  const field = (n: string) => (header.indexOf(n) >= 1 ? Number(values[header.indexOf(n) - 1]) : null);
  const rps = field('rps');
  if (rps === null || !Number.isFinite(rps)) throw new Error(`cannot read redis-benchmark output:\n${child.output()}`);
  return { name, pipeline, requestsPerSecond: rps, avgLatencyMs: field('avg_latency_ms'), p99LatencyMs: field('p99_latency_ms'), redisCpu: 0, command: `redis-benchmark ${args.join(' ')}` };
}

/**
 * Scenario 7: what Redis alone does per second for the per-message work,
 * through redis-benchmark on its own fresh redis-server: a script call of
 * the same kind as a message's (session check, block and presence checks,
 * append, trim, publish) and a bare append, pipelined and not. Scenario 1's
 * delivered msgs/s against that rate says how far the server is from Redis.
 */
export async function ceiling(ctx: ScenarioContext): Promise<ScenarioResult> {
  const o = ctx.options;
  const started = Date.now();
  const runs: CeilingRun[] = [];
  const notes: string[] = ['redis-benchmark runs on the same 2 cores as Redis and takes a share of them, as the server does in scenario 1'];
  const dir = mkdtempSync(join(tmpdir(), 'im-bench-ceiling-'));
  const redis = await startRedis(dir);
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    const sha = (await admin.script('LOAD', SCRIPT)) as string;
    // The users __rand_int__ picks among (redis-benchmark pads it to 12 digits): they exist, so the script takes its full path.
    const pipeline = admin.pipeline();
    for (let i = 0; i < 100; i++) {
      const u = `c${String(i).padStart(12, '0')}`;
      pipeline.hset(`u:{${u}}`, 'hash', 'x', 'seq', 0);
      pipeline.hset(`s:{${u}}`, 'token', 't', 'active', 0);
    }
    await pipeline.exec();
    const event = '{"type":"message","from":"c1","body":"bench message body of sixty-four characters, like scenario 1.","text":"c1: bench"}';
    const script = ['EVALSHA', sha, '6', 's:{c__rand_int__}', 'u:{c__rand_int__}', 'b:{c__rand_int__}', 's:{c__rand_int__}', 'i:{c__rand_int__}', 'w:{c__rand_int__}', '1700000000000', 'c__rand_int__', event];
    const append = ['RPUSH', 'i:{c__rand_int__}', event];
    for (const [name, command] of [['message-like script', script], ['append (RPUSH)', append]] as const) {
      for (const depth of [1, o.ceilingPipeline]) {
        progress(`  redis-benchmark: ${name}, pipeline ${depth}, ${o.ceilingRequests} requests, ${o.ceilingClients} clients`);
        const before = sample(redis.pid);
        const run = await benchmark(redis.port, name, depth, o.ceilingRequests, o.ceilingClients, [...command]);
        run.redisCpu = round(cpuShare(before, sample(redis.pid)));
        runs.push(run);
        await admin.del(...Array.from({ length: 100 }, (_, i) => `i:{c${String(i).padStart(12, '0')}}`));
      }
    }
  } finally {
    admin.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const scriptRate = runs.find((r) => r.name.startsWith('message') && r.pipeline === 1)?.requestsPerSecond ?? 0;
  const scenario1 = ctx.earlier.get(1);
  const closed = (scenario1?.figures.headline as { closedLoopMsgsPerSecond?: number } | undefined)?.closedLoopMsgsPerSecond;
  const ratio = closed && scriptRate ? round(closed / scriptRate, 3) : null;
  if (ratio === null) notes.push('no scenario 1 figure in this run to compare with');
  return {
    scenario: 7,
    title: "The ceiling: Redis's own rate for the per-message work",
    status: 'ok',
    settings: { requests: o.ceilingRequests, clients: o.ceilingClients, pipeline: o.ceilingPipeline, keyspace: 100 },
    notes,
    figures: { runs, scenario1MsgsPerSecond: closed ?? null, messageScriptPerSecond: scriptRate, scenario1OverScript: ratio },
    durationS: Math.round((Date.now() - started) / 1000),
  };
}
