/**
 * A token bucket held in memory (a bound connection's command rate, a TCP
 * connection's byte rate; the shared buckets are in the store,
 * state/lua/includes/bucket.lua): `rate` per second, at most `burst` saved
 * up; a rate of 0 or less means no limit.
 */
export interface Bucket {
  tokens: number;
  tokensAt: number;
}

/**
 * Takes `cost` tokens (one command, or a chunk's bytes) if there are that
 * many; the time comes from the caller's clock.
 */
export function takeToken(bucket: Bucket, now: number, rate: number, burst: number, cost = 1): boolean {
  if (rate <= 0) return true;
  bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.tokensAt) * rate) / 1000);
  bucket.tokensAt = now;
  if (bucket.tokens < cost) return false;
  bucket.tokens -= cost;
  return true;
}
