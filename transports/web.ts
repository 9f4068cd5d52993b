import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';

/** One file of the web client, ready to send. */
export interface WebFile {
  body: Uint8Array;
  type: string;
}

/** URL path -> file: `/` and `/assets/<name>`. */
export type WebFiles = Map<string, WebFile>;

/**
 * `web/` beside `transports/`: the same from the sources under tsx and from
 * `dist/transports/` once `npm run build` has copied `web/` to `dist/web`.
 * Resolved when called, not at import: in the Worker's bundle the module URL
 * is not a file (and the Worker passes its own files).
 */
export function webDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'web');
}

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Reads the web client into memory once, at start. The only filesystem use
 * of the web client: a host without one (a Worker) passes its own map to
 * `mountWebClient` instead.
 */
export function loadWebFiles(dir = webDir()): WebFiles {
  const files: WebFiles = new Map();
  files.set('/', { body: readFileSync(join(dir, 'index.html')), type: types['.html']! });
  for (const name of readdirSync(join(dir, 'assets'))) {
    const type = types[extname(name)];
    if (type) files.set(`/assets/${name}`, { body: readFileSync(join(dir, 'assets', name)), type });
  }
  return files;
}

/**
 * The page may run only its own scripts and styles and talk only to its own
 * origin (the API); nothing is fetched from elsewhere, and no site may frame
 * it (clickjacking).
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const securityHeaders = {
  'content-security-policy': contentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // Revalidate each time, so a new deployment's page and scripts go together.
  'cache-control': 'no-cache',
};

/** Serves the browser client (SPEC section 8): the page at `/`, its files under `/assets/`. */
export function mountWebClient(app: Hono, files: WebFiles = loadWebFiles()): void {
  const serve = (path: string) => {
    const file = files.get(path);
    if (!file) return null;
    return new Response(file.body, { status: 200, headers: { 'content-type': file.type, ...securityHeaders } });
  };
  app.get('/', (c) => serve('/') ?? c.notFound());
  app.get('/assets/:name', (c) => serve(`/assets/${c.req.param('name')}`) ?? c.notFound());
}
