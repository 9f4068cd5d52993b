import * as hdr from 'hdr-histogram-js';

/** Latencies in microseconds, from 1 µs to one hour, three significant digits. */
export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Records a duration given in milliseconds (performance.now() differences). */
export function recordMs(histogram: hdr.Histogram, ms: number): void {
  histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
}

export function encode(histogram: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function decode(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded);
}
