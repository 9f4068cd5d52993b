import { parseArgs as parseCommandLine } from 'node:util';
import { defaultConfig, type Config, type LogLevel } from '../handlers/types.js';
import { parseProxyRange } from '../transports/addresses.js';
import { logFormats, logLevels, type LogFormat } from './log.js';

/** Everything the Node entry needs to start, from arguments and environment. */
export interface ServerOptions {
  port: number;
  httpPort: number;
  /** '' = not given: every interface, or loopback only with the embedded store. */
  host: string;
  /** The Prometheus listener's port (0 = none) and address, apart from the public ports. */
  metricsPort: number;
  metricsHost: string;
  /** scrypt cost of new hashes; 0 = not given (the store decides: see entries/node.ts). */
  passwordCost: number;
  credentials: string;
  redis: string;
  trustProxy: string[];
  byteRate: number;
  byteBurst: number;
  lineTimeout: number;
  loginTimeout: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  sweepInterval: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  config: Config;
}

type Target = { top: Exclude<keyof ServerOptions, 'config' | 'trustProxy'> | 'trustProxy' } | { config: keyof Config };

interface Flag {
  flag: string;
  env: string;
  value: string;
  help: string;
  target: Target;
  kind: 'integer' | 'text' | 'ranges' | 'yes-no';
}

/**
 * Every flag, its environment variable and its meaning; the usage text and
 * the README's configuration table come from here. Flags win over the
 * environment, which wins over the defaults.
 */
export const flags: Flag[] = [
  { flag: '--http-port', env: 'IM_HTTP_PORT', value: 'N', kind: 'integer', target: { top: 'httpPort' }, help: 'HTTP port, 0 disables HTTP (8080)' },
  { flag: '--host', env: 'IM_HOST', value: 'ADDR', kind: 'text', target: { top: 'host' }, help: 'address to listen on; without it the embedded store listens on loopback only (0.0.0.0)' },
  { flag: '--metrics-port', env: 'IM_METRICS_PORT', value: 'N', kind: 'integer', target: { top: 'metricsPort' }, help: 'port of GET /metrics (Prometheus), a listener of its own apart from the public ports; 0 disables it (9464)' },
  { flag: '--metrics-host', env: 'IM_METRICS_HOST', value: 'ADDR', kind: 'text', target: { top: 'metricsHost' }, help: 'address of the metrics listener; give a private address for a scraper on another machine (127.0.0.1)' },
  { flag: '--credentials', env: 'IM_CREDENTIALS', value: 'FILE', kind: 'text', target: { top: 'credentials' }, help: 'users to seed the store with (credentials.txt)' },
  { flag: '--log-level', env: 'IM_LOG_LEVEL', value: 'LEVEL', kind: 'text', target: { top: 'logLevel' }, help: 'debug (a line per command), info, warn or error (info)' },
  { flag: '--log-format', env: 'IM_LOG_FORMAT', value: 'FORMAT', kind: 'text', target: { top: 'logFormat' }, help: 'json, text, or auto: text on a terminal, json otherwise (auto)' },
  { flag: '--redis', env: 'REDIS_URL', value: 'URL', kind: 'text', target: { top: 'redis' }, help: 'Redis URL, or comma-separated cluster node URLs (embedded store)' },
  { flag: '--trust-proxy', env: 'IM_TRUST_PROXY', value: 'ADDR[,ADDR]', kind: 'ranges', target: { top: 'trustProxy' }, help: 'proxies (addresses or CIDR ranges) whose PROXY v2 header / X-Forwarded-For is believed (none)' },
  { flag: '--command-rate', env: 'IM_COMMAND_RATE', value: 'N', kind: 'integer', target: { config: 'commandRate' }, help: 'commands per second per session, 0 = no limit (20)' },
  { flag: '--command-burst', env: 'IM_COMMAND_BURST', value: 'N', kind: 'integer', target: { config: 'commandBurst' }, help: 'commands a session may send at once (40)' },
  { flag: '--login-rate', env: 'IM_LOGIN_RATE', value: 'N', kind: 'integer', target: { config: 'loginRate' }, help: 'login attempts per second per address, 0 = no limit (10)' },
  { flag: '--login-burst', env: 'IM_LOGIN_BURST', value: 'N', kind: 'integer', target: { config: 'loginBurst' }, help: 'login attempts an address may make at once (50)' },
  { flag: '--max-message', env: 'IM_MAX_MESSAGE', value: 'N', kind: 'integer', target: { config: 'maxMessageLength' }, help: 'characters in a message or broadcast (1000)' },
  { flag: '--max-line', env: 'IM_MAX_LINE', value: 'N', kind: 'integer', target: { config: 'maxLineBytes' }, help: 'bytes in a command line (8192)' },
  { flag: '--max-body', env: 'IM_MAX_BODY', value: 'N', kind: 'integer', target: { config: 'maxBodyBytes' }, help: 'bytes in an HTTP request body (16384)' },
  { flag: '--backlog', env: 'IM_BACKLOG', value: 'N', kind: 'integer', target: { config: 'backlog' }, help: 'events kept per inbox (10000)' },
  { flag: '--lobby-backlog', env: 'IM_LOBBY_BACKLOG', value: 'N', kind: 'integer', target: { config: 'lobbyBacklog' }, help: 'presence and broadcast events kept in the lobby (10000)' },
  { flag: '--session-lifetime', env: 'IM_SESSION_LIFETIME', value: 'S', kind: 'integer', target: { config: 'sessionLifetime' }, help: 'seconds a session lasts at most, active or not, 0 = no limit (86400)' },
  { flag: '--address-failures', env: 'IM_ADDRESS_FAILURES', value: 'N', kind: 'integer', target: { config: 'addressFailures' }, help: 'wrong passwords, for any accounts, from one address (an IPv6 /64) that block it, 0 = not counted (10)' },
  { flag: '--password-cost', env: 'IM_PASSWORD_COST', value: 'N', kind: 'integer', target: { top: 'passwordCost' }, help: 'scrypt cost N of new password hashes, a power of two from 1024 (131072; 16384 on the embedded store)' },
  { flag: '--rehash-passwords', env: 'IM_REHASH_PASSWORDS', value: 'yes/no', kind: 'yes-no', target: { config: 'rehashPasswords' }, help: 'remake a hash of a lower cost at its next login; no is for benchmarks that seed cheap hashes on purpose (yes)' },
  { flag: '--byte-rate', env: 'IM_BYTE_RATE', value: 'N', kind: 'integer', target: { top: 'byteRate' }, help: 'bytes per second a TCP client may send, 0 = no limit (524288)' },
  { flag: '--byte-burst', env: 'IM_BYTE_BURST', value: 'N', kind: 'integer', target: { top: 'byteBurst' }, help: 'bytes a TCP client may send at once (2097152)' },
  { flag: '--line-timeout', env: 'IM_LINE_TIMEOUT', value: 'S', kind: 'integer', target: { top: 'lineTimeout' }, help: 'seconds a TCP line may stay unfinished (30)' },
  { flag: '--login-timeout', env: 'IM_LOGIN_TIMEOUT', value: 'S', kind: 'integer', target: { top: 'loginTimeout' }, help: 'seconds a TCP connection may stay without a session, 0 = no limit (30)' },
  { flag: '--max-connections', env: 'IM_MAX_CONNECTIONS', value: 'N', kind: 'integer', target: { top: 'maxConnections' }, help: 'connections one replica holds, TCP and HTTP together, 0 = no limit; keep it below the open-file limit (16000)' },
  { flag: '--max-connections-per-address', env: 'IM_MAX_CONNECTIONS_PER_ADDRESS', value: 'N', kind: 'integer', target: { top: 'maxConnectionsPerAddress' }, help: 'connections (TCP and HTTP) from one client address (an IPv6 /64), 0 = no limit; trusted proxies are not counted (64)' },
  { flag: '--sweep-interval', env: 'IM_SWEEP_INTERVAL', value: 'MS', kind: 'integer', target: { top: 'sweepInterval' }, help: 'milliseconds between inactivity sweeps (1000)' },
  { flag: '--private-request-ttl', env: 'IM_PRIVATE_REQUEST_TTL', value: 'S', kind: 'integer', target: { config: 'privateRequestTtl' }, help: 'seconds a private-chat request can be answered (120)' },
];

export const usage = [
  'Usage: npm start -- [port] [block_duration] [timeout] [options]',
  '  port            TCP port (4000)',
  '  block_duration  seconds an account or address stays blocked after 3 failed logins (60)',
  '  timeout         seconds of inactivity before a session is logged out (120)',
  'Options (environment variable in brackets):',
  ...flags.map((f) => `  ${`${f.flag} ${f.value}`.padEnd(30)} ${f.help} [${f.env}]`),
  '  --help                         this text',
].join('\n');

export class UsageError extends Error {}

/** Parses the assignment's positional form plus the flags. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = {}): ServerOptions | 'help' {
  const options: ServerOptions = {
    port: 4000,
    httpPort: 8080,
    host: '',
    metricsPort: 9464,
    metricsHost: '127.0.0.1',
    passwordCost: 0,
    credentials: 'credentials.txt',
    redis: '',
    trustProxy: [],
    byteRate: 524288,
    byteBurst: 2097152,
    lineTimeout: 30,
    loginTimeout: 30,
    maxConnections: 16000,
    maxConnectionsPerAddress: 64,
    sweepInterval: 1000,
    logLevel: 'info',
    logFormat: 'auto',
    config: { ...defaultConfig },
  };
  const apply = (f: Flag, raw: string, origin: string) => {
    let value: number | string | string[] | boolean = raw;
    if (f.kind === 'yes-no') {
      if (raw !== 'yes' && raw !== 'no') throw new UsageError(`${origin} is yes or no, got "${raw}"`);
      value = raw === 'yes';
    } else if (f.kind === 'integer') {
      if (!/^\d{1,9}$/.test(raw)) throw new UsageError(`${origin} needs a non-negative integer, got "${raw}"`);
      value = Number(raw);
    } else if (f.kind === 'ranges') {
      value = raw.split(',').map((s) => s.trim()).filter(Boolean);
      const bad = value.find((entry) => !parseProxyRange(entry));
      if (bad !== undefined) throw new UsageError(`${origin} takes addresses or CIDR ranges (10.0.0.5, 10.0.0.0/24, fd00::/8), got "${bad}"`);
    }
    if ('config' in f.target) (options.config as unknown as Record<string, unknown>)[f.target.config] = value;
    else (options as unknown as Record<string, unknown>)[f.target.top] = value;
  };
  for (const f of flags) if (env[f.env] !== undefined && env[f.env] !== '') apply(f, env[f.env]!, f.env);

  const { values, positionals: positional } = readCommandLine(argv);
  if (values.help) return 'help';
  for (const f of flags) {
    const value = (values as Record<string, string | boolean | undefined>)[f.flag.slice(2)];
    if (typeof value === 'string') apply(f, value, f.flag);
  }
  if (positional.length > 3) throw new UsageError(`too many arguments: ${positional.slice(3).join(' ')}`);
  const [port, blockDuration, timeout] = positional.map((p, k) => {
    if (!/^\d{1,9}$/.test(p)) throw new UsageError(`${['port', 'block_duration', 'timeout'][k]} must be a non-negative integer, got "${p}"`);
    return Number(p);
  });
  if (port !== undefined) options.port = port;
  if (blockDuration !== undefined) options.config.blockDuration = blockDuration;
  if (timeout !== undefined) {
    if (timeout === 0) throw new UsageError('timeout must be at least 1 second');
    options.config.timeout = timeout;
  }
  if (options.port > 65535 || options.httpPort > 65535 || options.metricsPort > 65535) throw new UsageError('ports are at most 65535');
  if (options.passwordCost !== 0 && !isPasswordCost(options.passwordCost)) {
    throw new UsageError(`--password-cost is a power of two from 1024 to 1048576, got ${options.passwordCost}`);
  }
  if (options.metricsHost === '') throw new UsageError('--metrics-host needs an address');
  if (!logLevels.includes(options.logLevel)) throw new UsageError(`--log-level is one of ${logLevels.join(', ')}, got "${options.logLevel}"`);
  if (!logFormats.includes(options.logFormat)) throw new UsageError(`--log-format is one of ${logFormats.join(', ')}, got "${options.logFormat}"`);
  return options;
}

/** An scrypt cost N this server makes hashes with: a power of two from 2^10 to 2^20. */
export function isPasswordCost(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1024 && n <= 2 ** 20 && (n & (n - 1)) === 0;
}

/** The options `node:util`'s parser knows: every flag of the table takes a value, and --help. */
const commandLineOptions = {
  ...Object.fromEntries(flags.map((f) => [f.flag.slice(2), { type: 'string' as const }])),
  help: { type: 'boolean' as const, short: 'h' },
};

/** Flags anywhere among the positionals (`5000 --http-port 5001 3 4`); the last of a repeated flag wins. */
function readCommandLine(argv: string[]) {
  try {
    return parseCommandLine({ args: argv, options: commandLineOptions, allowPositionals: true, strict: true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const name = /'(-[^' ]+)/.exec(err instanceof Error ? err.message : '')?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${name}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // node:util takes no value that starts with a dash after a space (`--redis --host x` is a missing value).
      const dash = /ambiguous/.test(String(err)) ? `; write ${name}=VALUE for a value that starts with "-"` : '';
      throw new UsageError(`${name} needs a value${dash}`);
    }
    throw err;
  }
}
