#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import type { Context, Logger } from '../handlers/types.js';
import { importUsers } from '../handlers/users.js';
import { openState } from '../state/connect.js';
import { parseArgs, usage, UsageError, type ServerOptions } from './args.js';
import { createContext } from './context.js';
import { parseCredentials } from './credentials.js';
import { createLogger } from './log.js';
import { startReplica } from './replica.js';

/**
 * The Node entry: one replica serving TCP and HTTP over one state store,
 * with its inactivity sweeper. SIGTERM drains it; SIGHUP re-reads the
 * credentials file (new users are added; existing passwords are kept).
 */
async function main(): Promise<void> {
  let options: ServerOptions | 'help';
  try {
    options = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n${usage}\n`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(usage + '\n');
    return;
  }
  const opts = options;
  const log = createLogger(opts.logLevel, undefined, opts.logFormat);
  // A promise chain nobody caught is a bug to see with its stack, not a
  // reason to drop every connection of this replica.
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', { err }));
  const { state, embedded } = openState(opts.redis, (message) => log('warn', message));
  // The embedded store comes with the demo credentials: it listens on
  // loopback unless --host says otherwise (the banner says how).
  const host = opts.host || (embedded ? '127.0.0.1' : '0.0.0.0');
  // The embedded store lives and dies with this process and holds the demo
  // users: its hashes never leave memory, so it hashes at scrypt's older
  // 2^14 and starts in a moment; a real store gets OWASP's 2^17.
  const passwordCost = opts.passwordCost || (embedded ? 2 ** 14 : opts.config.passwordCost);
  const ctx = createContext(state, { ...opts.config, passwordCost }, log);
  await state.migrate();
  await seedUsers(ctx, opts.credentials, log);

  const replica = await startReplica({
    ctx,
    host,
    port: opts.port,
    httpPort: opts.httpPort,
    metricsPort: opts.metricsPort,
    metricsHost: opts.metricsHost,
    trustProxy: opts.trustProxy,
    byteRate: opts.byteRate,
    byteBurst: opts.byteBurst,
    lineTimeoutMs: opts.lineTimeout * 1000,
    loginTimeoutMs: opts.loginTimeout * 1000,
    maxConnections: opts.maxConnections,
    maxConnectionsPerAddress: opts.maxConnectionsPerAddress,
    sweepIntervalMs: opts.sweepInterval,
  });

  // What it stores in, how to reload it, and (last: the line a supervisor
  // or a test waits for) where it listens; through the log like everything
  // after, so start-up output has one format.
  log(
    'info',
    embedded
      ? `State: embedded in-process store; everything in it is lost when the server exits (set REDIS_URL or --redis to keep it)${
          opts.host ? '' : '. Listening on loopback only: --host 0.0.0.0 opens it to other machines'
        }`
      : `State: Redis at ${maskedRedisUrl(opts.redis)}`,
  );
  log('info', `block_duration ${opts.config.blockDuration}s, timeout ${opts.config.timeout}s`);
  log('info', `Process ${process.pid}: kill -HUP ${process.pid} re-reads ${opts.credentials}; kill -TERM ${process.pid} drains and stops`, {
    pid: process.pid,
  });
  log(
    'info',
    replica.metricsPort
      ? `Metrics: GET http://${hostPort(opts.metricsHost, replica.metricsPort)}/metrics, on this listener only${
          isLoopback(opts.metricsHost) ? ' (loopback: --metrics-host ADDR lets a scraper on another machine in)' : ''
        }`
      : 'Metrics: off (--metrics-port 0)',
    { metricsPort: replica.metricsPort, metricsHost: opts.metricsHost },
  );
  const http = opts.httpPort ? ` and HTTP ${host}:${opts.httpPort}` : ' (HTTP disabled)';
  log('info', `Messaging server listening on TCP ${host}:${replica.tcpPort}${http}`, {
    tcpPort: replica.tcpPort,
    httpPort: opts.httpPort,
    metricsPort: replica.metricsPort,
    host,
  });

  process.on('SIGHUP', () => {
    seedUsers(ctx, opts.credentials, log).catch((err) => log('error', 'reloading credentials failed', { err }));
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('info', `${signal}: draining`);
    replica.drain();
    // Give answered long-polls and session_end lines a moment to leave.
    setTimeout(() => {
      void state.close().finally(() => process.exit(0));
    }, 300).unref();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function seedUsers(ctx: Context, file: string, log: Logger): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    log('warn', `cannot read credentials file ${file}; no users seeded`, { error: (err as Error).message });
    return;
  }
  const { entries, problems } = parseCredentials(text);
  for (const problem of problems) log('warn', `${file} ${problem}; skipped`);
  const added = await importUsers(ctx, entries);
  log('info', `credentials: ${entries.length} users in ${file}, ${added.length} new`);
}

/** `host:port`, an IPv6 address in brackets, as in a URL. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** A Redis URL (or cluster seed list) with any password replaced, for the log. */
function maskedRedisUrl(urls: string): string {
  return urls
    .split(',')
    .map((u) => {
      try {
        const url = new URL(u.trim());
        if (url.password) url.password = '***';
        return url.toString().replace(/\/$/, '');
      } catch {
        return '(not a URL)';
      }
    })
    .join(',');
}

main().catch((err) => {
  process.stderr.write(`fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
