import type { Verification } from '../protocol.js';
import type { EnvironmentOptions } from './environment.js';
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
  /** Where the server writes its CPU profiles ('' = none: --profile not given). */
  profileDir: string;
  /** Figures of scenarios already run in this run against the same server (scenario 7 compares with 1). */
  earlier: Map<number, ScenarioResult>;
}

/** What every scenario's environment takes from the run: which server, on which node, profiled or not. */
export function serverOf(ctx: ScenarioContext): Pick<EnvironmentOptions, 'serverRoot' | 'serverNode' | 'runId' | 'profileDir'> {
  return { serverRoot: ctx.serverRoot, serverNode: ctx.serverNode, runId: ctx.runId, profileDir: ctx.profileDir };
}
