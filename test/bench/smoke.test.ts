import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The bench keeps working: a smoke run (tiny sizes, every scenario) against
 * this checkout's built server produces well-formed results. Its figures are
 * never looked at: speed is measured by `npm run bench`, not asserted here.
 */
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'im-bench-smoke-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // The runner stops its own children on SIGTERM; this only guards against a hung run.
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGTERM'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run bench', () => {
  it('prints its usage with --help', async () => {
    const { code, stdout } = await runBench(['--help'], 30_000);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npm run bench');
    expect(stdout).toContain('--server-root');
  });

  it('refuses an unknown argument with the usage and exit code 2', async () => {
    const { code, stderr } = await runBench(['--no-such-flag'], 30_000);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown argument');
  });

  it('runs every scenario at smoke sizes to the end, accounts for every message it sent, and writes well-formed results', async () => {
    const { code, stdout, stderr } = await runBench(['--smoke', '--out', out], 170_000);
    expect(code, stderr).toBe(0);
    expect(stdout.trim()).toBe(out);
    expect(stderr).toContain('[bench ');

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.smoke).toBe(true);
    expect(results.command).toContain('--smoke');
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.machine.node).toBe(process.version);
    expect(results.machine.redis).toMatch(/Redis server/);
    expect(results.users).toContain('scrypt');
    expect(results.runs).toHaveLength(1);
    const [run] = results.runs;
    expect(run.measured).toContain('dist/entries/node.js');
    expect(run.scenarios.map((s: { scenario: number }) => s.scenario)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const s of run.scenarios) {
      // Smoke sizes finish in seconds; a deadline (30 s a scenario) reached here means the bench or the server is stuck.
      expect(s.status, `scenario ${s.scenario}: ${s.error ?? (s.notes ?? []).join('; ')}`).toBe('ok');
      expect(Object.keys(s.figures).length, `scenario ${s.scenario}`).toBeGreaterThan(0);
    }
    // Every scenario that sends messages checks what arrives (bench/README.md, "Checking what arrives"):
    // at smoke sizes, with the limits off, everything sent is delivered, once, to its addressee.
    for (const n of [1, 2, 3, 5, 6]) {
      const v = run.scenarios.find((s: { scenario: number }) => s.scenario === n).verification;
      expect(v, `scenario ${n} has no verification`).toBeDefined();
      expect(v.sent, `scenario ${n}`).toBeGreaterThan(0);
      expect(v, `scenario ${n}`).toEqual({ sent: v.sent, delivered: v.sent, lost: 0, refused: {}, duplicates: 0, misrouted: 0, foreign: 0, gaps: 0 });
    }
    const figures = (n: number) => run.scenarios.find((s: { scenario: number }) => s.scenario === n).figures;
    expect(Number.isFinite(figures(1).closedLoop.deliveredPerSecond)).toBe(true);
    expect(figures(1).openLoop[0].latency.count).toBeGreaterThan(0);
    expect(figures(3).steps.length).toBeGreaterThan(0);
    expect(figures(4).curve.length).toBeGreaterThan(0);
    expect(figures(7).runs.length).toBe(4);

    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toMatch(/^# Bench results/);
    expect(summary).toContain('Smoke run');
    const svgs = readdirSync(out).filter((f) => f.endsWith('.svg'));
    expect(svgs.sort()).toEqual(['fanout.svg', 'latency.svg', 'logins.svg', 'rss.svg', 'slow-reader.svg']);
    for (const file of svgs) {
      const svg = readFileSync(join(out, file), 'utf8');
      expect(svg.startsWith('<svg'), file).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>'), file).toBe(true);
      expect(summary).toContain(`(${file})`);
    }
  }, 180_000);
});
