import type { Verification } from '../protocol.js';
import type { Options } from './options.js';

/** What every scenario reports; `figures` holds its own numbers. */
export interface ScenarioResult {
  scenario: number;
  title: string;
  /** ok; deadline: stopped by a deadline and reports what it reached; failed: see error. */
  status: 'ok' | 'deadline' | 'failed';
  error?: string;
  /** Sizes and settings it ran with. */
  settings: Record<string, unknown>;
  /** Every message it counted, checked (absent when it sends none). */
  verification?: Verification;
  notes: string[];
  figures: Record<string, unknown>;
  durationS: number;
}

export interface ScenarioContext {
  options: Options;
  serverRoot: string;
  /** The node binary this run's server runs on (drivers run on the bench's own). */
  serverNode: string;
  runId: string;
  /** Figures of scenarios already run in this run against the same server (scenario 7 compares with 1). */
  earlier: Map<number, ScenarioResult>;
}
