// `npm run build`: compiles the server, the CLI and the user tool to dist/
// (tsc, tsconfig.build.json) and copies what they read at run time (the Lua
// scripts, the web client). Plain JavaScript, so it runs under plain node.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The file `npm start` runs; its time is the build's. */
export const builtEntry = join(root, 'dist', 'entries', 'node.js');
/** What the build reads: a file newer than the built entry means dist/ is stale. */
const inputs = ['handlers', 'state', 'delivery', 'transports', 'entries', 'client', 'web', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];

export function build() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  cpSync(join(root, 'state', 'lua'), join(root, 'dist', 'state', 'lua'), { recursive: true });
  cpSync(join(root, 'web'), join(root, 'dist', 'web'), { recursive: true });
}

/** The first input newer than the built entry, '' when dist/ is up to date, or null when there is no build. */
export function staleInput() {
  let built;
  try {
    built = statSync(builtEntry).mtimeMs;
  } catch {
    return null;
  }
  const newer = (path) => {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) return '';
    if (!stat.isDirectory()) return stat.mtimeMs > built ? path : '';
    for (const name of readdirSync(path)) {
      const found = newer(join(path, name));
      if (found) return found;
    }
    return '';
  };
  for (const input of inputs) {
    const found = newer(join(root, input));
    if (found) return found.slice(root.length + 1);
  }
  return '';
}

/**
 * Builds when dist/ is missing or older than a source, saying why on
 * stderr; true if it built. What `npm start` and deploy/one-machine.sh run.
 */
export function buildIfStale() {
  const stale = staleInput();
  if (stale === '') return false;
  process.stderr.write(stale === null ? 'No build yet: npm run build (once)...\n' : `${stale} is newer than dist/: npm run build...\n`);
  build();
  return true;
}

// `node scripts/build.mjs` builds; `--if-stale` only when dist/ is out of date.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv[2] === '--if-stale') {
    if (!buildIfStale()) process.stderr.write('dist/ is up to date\n');
  } else {
    build();
  }
}
