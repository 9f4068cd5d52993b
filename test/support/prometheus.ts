/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4):
 * every line must be a comment (# HELP / # TYPE), blank, or a sample
 * `name{label="value",...} number`; anything else throws. Returns the
 * samples, so a test can look one up by name and labels.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

// Values as Go's ParseFloat reads them (Prometheus does): numbers, NaN and
// infinities in any case (prom-client writes `Nan` for an empty gauge).
const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|[Nn]a[Nn]|[+-]?[Ii]nf)( -?\d+)?$/;
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type)) throw new Error(`bad TYPE line: ${line}`);
      types.set(name, type);
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unknown comment line: ${line}`);
    const m = sampleLine.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      labelPair.lastIndex = 0;
      while (labelPair.lastIndex < m[3].length) {
        const pair = labelPair.exec(m[3]);
        if (!pair) throw new Error(`bad labels in: ${line}`);
        labels[pair[1]] = pair[2].replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    const word = m[4].toLowerCase();
    const value = word === 'nan' ? NaN : word.endsWith('inf') ? (word.startsWith('-') ? -Infinity : Infinity) : Number(m[4]);
    samples.push({ name: m[1], labels, value });
  }
  if (types.size === 0) throw new Error('no TYPE lines: not a Prometheus exposition');
  return samples;
}

/** The value of the sample with this name and (at least) these labels; 0 when absent. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value ?? 0;
}
