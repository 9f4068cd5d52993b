import type { Verification } from '../protocol.js';
import { decode, newHistogram } from '../driver/histogram.js';
import { round } from './redis-stats.js';

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

const ms = (us: number) => round(us / 1000, 3);

/** Percentiles of one or more HDR histograms (compressed base64, microseconds), merged. */
export function summarize(encoded: string | string[]): LatencySummary {
  const all = (Array.isArray(encoded) ? encoded : [encoded]).map(decode);
  const h = all[0] ?? newHistogram();
  for (const other of all.slice(1)) h.add(other);
  if (h.totalCount === 0) return { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 };
  return {
    count: h.totalCount,
    meanMs: ms(h.mean),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    maxMs: ms(h.maxValue),
  };
}

/** Percentiles of plain microsecond values, through the same HDR histogram. */
export function summarizeUs(values: number[]): LatencySummary {
  const h = newHistogram();
  for (const v of values) h.recordValue(Math.max(1, Math.round(v)));
  if (h.totalCount === 0) return { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 };
  return {
    count: h.totalCount,
    meanMs: ms(h.mean),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    maxMs: ms(h.maxValue),
  };
}

export function emptyVerification(): Verification {
  return { sent: 0, delivered: 0, lost: 0, refused: {}, duplicates: 0, misrouted: 0, foreign: 0, gaps: 0 };
}

export function addVerification(into: Verification, v: Verification): Verification {
  into.sent += v.sent;
  into.delivered += v.delivered;
  into.lost += v.lost;
  into.duplicates += v.duplicates;
  into.misrouted += v.misrouted;
  into.foreign += v.foreign;
  into.gaps += v.gaps;
  for (const [code, n] of Object.entries(v.refused)) into.refused[code] = (into.refused[code] ?? 0) + n;
  return into;
}

export function refusedCount(v: Verification): number {
  return Object.values(v.refused).reduce((a, b) => a + b, 0);
}

/** Anything the driver saw that a correct server never does. */
export function troubles(v: Verification): string[] {
  const out: string[] = [];
  if (v.lost) out.push(`${v.lost} lost`);
  const refused = refusedCount(v);
  if (refused) out.push(`${refused} refused (${Object.entries(v.refused).map(([c, n]) => `${c} ${n}`).join(', ')})`);
  if (v.duplicates) out.push(`${v.duplicates} duplicated`);
  if (v.misrouted) out.push(`${v.misrouted} misrouted`);
  if (v.foreign) out.push(`${v.foreign} foreign`);
  if (v.gaps) out.push(`${v.gaps} gaps`);
  return out;
}

export const MiB = 1024 * 1024;
export const mib = (bytes: number) => round(bytes / MiB, 1);
