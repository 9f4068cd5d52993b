const started = Date.now();

/** One progress line on stderr, prefixed with the time since the run began. */
export function progress(message: string): void {
  const s = Math.floor((Date.now() - started) / 1000);
  const stamp = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  process.stderr.write(`[bench ${stamp}] ${message}\n`);
}
