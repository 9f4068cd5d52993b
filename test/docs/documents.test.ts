import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrometheus } from '../support/prometheus.js';
import { root, startServer, type RunningServer } from '../support/server.js';
import { TcpClient } from '../support/tcp-client.js';

/*
 * What the README and docs/OPERATIONS.md tell an operator, checked against
 * the real server: its --help, its answers, its metrics and its log lines.
 * A flag, metric or answer added or changed without its document fails here.
 */

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const operations = readFileSync(join(root, 'docs', 'OPERATIONS.md'), 'utf8');

/** The rows of the first Markdown table after `heading`, cells trimmed. */
function table(doc: string, heading: string): string[][] {
  const at = doc.indexOf(`\n${heading}\n`);
  expect(at, `heading ${heading}`).toBeGreaterThanOrEqual(0);
  const lines = doc.slice(at).split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(' | ').map((c) => c.trim()));
  }
  return rows;
}

const unquote = (cell: string) => cell.replace(/`/g, '');

interface HelpFlag {
  flag: string;
  env: string;
  defaultValue: string;
}

/** `  --flag VALUE   meaning (default) [ENV]` lines of the server's --help. */
function helpFlags(help: string): HelpFlag[] {
  const flags: HelpFlag[] = [];
  for (const line of help.split('\n')) {
    const m = /^ {2}(--\S+ \S+)\s+.*\(([^()]*)\) \[(\w+)\]$/.exec(line);
    if (m) flags.push({ flag: m[1], defaultValue: m[2], env: m[3] });
  }
  return flags;
}

describe('README: configuration', () => {
  it('the table lists every option of --help, with its environment variable and default, and nothing else', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'entries', 'node.ts'), '--help'], { cwd: root });
    const help = helpFlags(stdout);
    expect(help.length).toBeGreaterThan(20);
    const documented = table(readme, '## Configuration').map(([flag, env, defaultValue]) => ({
      flag: unquote(flag),
      env: unquote(env),
      defaultValue: unquote(defaultValue),
    }));
    expect(documented).toEqual(help);
  });
});

describe('docs/OPERATIONS.md against a running server', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ args: ['--log-level', 'debug'] });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('health endpoints answer what the Health table says', async () => {
    const rows = table(operations, '## Health');
    for (const path of ['/healthz', '/readyz']) {
      const row = rows.find(([endpoint]) => endpoint === `\`GET ${path}\``);
      expect(row, path).toBeDefined();
      const documented = /^200 `([^`]+)`/.exec(row![1]);
      expect(documented, `${path}: the answer in the table`).not.toBeNull();
      const res = await fetch(`${server.http}${path}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(JSON.parse(documented![1]));
    }
  });

  it('every metric the replica exports is in the Metrics table, and every metric there is exported', async () => {
    // Traffic first, so that labelled series exist.
    const client = await TcpClient.open(server.tcpPort);
    try {
      expect(await client.command('login yoda wise')).toMatchObject({ ok: true });
      expect(await client.command('whoelse')).toMatchObject({ ok: true });
      expect(await client.command('logout')).toMatchObject({ ok: true });
    } finally {
      client.close();
    }
    const text = await (await fetch(`${server.metrics}/metrics`)).text();
    parsePrometheus(text);
    const exported = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    expect(exported.every((name) => name.startsWith('im_'))).toBe(true);
    const names = table(operations, '## Metrics').flatMap(([cell]) => [...cell.matchAll(/`(im_[a-z_]+\*?)`/g)].map((m) => m[1]));
    const exact = names.filter((n) => !n.endsWith('*'));
    const prefixes = names.filter((n) => n.endsWith('*')).map((n) => n.slice(0, -1));
    for (const name of exported) {
      expect(exact.includes(name) || prefixes.some((p) => name.startsWith(p)), `${name} is not in docs/OPERATIONS.md`).toBe(true);
    }
    for (const name of exact) expect(exported, `${name} is documented but not exported`).toContain(name);
    // The default metrics the table names by example exist under those names.
    const examples = [...operations.matchAll(/`(im_(?:process|nodejs)_[a-z_]+)`/g)].map((m) => m[1]);
    expect(examples.length).toBeGreaterThan(0);
    for (const name of examples) expect(exported, `${name} (named in docs/OPERATIONS.md)`).toContain(name);
  });

  it('logs in one format from the first line on: JSON objects with the fields the Logs section names', () => {
    const lines = server.output().split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(entry)).toEqual(expect.arrayContaining(['level', 'time', 'msg', 'replica']));
      expect(['debug', 'info', 'warn', 'error']).toContain(entry.level);
    }
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const listening = entries.find((e) => String(e.msg).startsWith('Messaging server listening on TCP '));
    expect(listening).toMatchObject({ level: 'info', tcpPort: server.tcpPort, httpPort: server.httpPort, metricsPort: server.metricsPort });
    const pid = entries.find((e) => typeof e.pid === 'number');
    expect(pid).toMatchObject({ level: 'info', pid: server.process.pid });
    expect(pid!.msg).toBe(`Process ${server.process.pid}: kill -HUP ${server.process.pid} re-reads ${join(root, 'credentials.txt')}; kill -TERM ${server.process.pid} drains and stops`);
    // The command entry of the table, which the traffic of the test before produced, at its level.
    const commandLine = entries.find((e) => e.msg === 'command' && e.verb === 'whoelse');
    expect(commandLine).toMatchObject({ level: 'debug', transport: 'tcp', user: 'yoda', outcome: 'ok', ms: expect.any(Number) });
  });

  it('--log-format text writes every line as text, the start-up lines included', async () => {
    const text = await startServer({ args: ['--log-format', 'text'] });
    try {
      const lines = text.output().split('\n').filter(Boolean);
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) \S/);
      expect(lines.some((l) => l.includes(`INFO  Messaging server listening on TCP 127.0.0.1:${text.tcpPort} and HTTP 127.0.0.1:${text.httpPort} tcpPort=`))).toBe(true);
    } finally {
      await text.stop();
    }
  });
});

describe('deploy/: the V8 flags', () => {
  it('the systemd unit starts node with the flags npm start passes (package.json config.nodeFlags)', () => {
    const flags = String(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).config.nodeFlags);
    const unit = readFileSync(join(root, 'deploy', 'systemd', 'im-replica@.service'), 'utf8');
    const execStart = unit.split('\n').find((line) => line.startsWith('ExecStart='));
    expect(flags).not.toBe('');
    expect(execStart).toBe(`ExecStart=/usr/bin/node ${flags} /opt/im/dist/entries/node.js %i $IM_REPLICA_ARGS`);
  });
});
