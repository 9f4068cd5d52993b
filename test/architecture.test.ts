import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The rooms of docs/DESIGN.md ("Rooms") and what each may touch, read from
 * the sources: which room each relative import lands in, and the few
 * things a transport must never do with what a command means.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The repository paths a file imports by relative path. */
function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => normalize(join(dirname(file), m[1])));
}

const room = (path: string) => path.split('/')[0];

/** Where each room's imports may land (besides its own room). */
const allowed: Record<string, (target: string) => boolean> = {
  state: () => false,
  handlers: (t) => room(t) === 'state',
  delivery: (t) => room(t) === 'state' || t === 'handlers/types.js' || t === 'handlers/events.js',
  transports: (t) => ['handlers', 'delivery', 'state'].includes(room(t)),
  entries: (t) => !['client', 'web', 'bench', 'test'].includes(room(t)),
  client: () => false,
  web: () => false,
  bench: () => false,
};

describe('rooms and arrows', () => {
  for (const [name, may] of Object.entries(allowed)) {
    it(`${name}/ imports only what its room may touch`, () => {
      const wrong = sources(name).flatMap((file) =>
        imports(file)
          .filter((target) => room(target) !== name && !target.startsWith('.wrangler') && !may(target))
          .map((target) => `${file} -> ${target}`),
      );
      expect(wrong).toEqual([]);
    });
  }

  it('nothing imports an entry point (the Node replica, the Worker, the user tool)', () => {
    const entryPoints = ['entries/node.js', 'entries/worker.js', 'entries/users.js'];
    const all = ['state', 'handlers', 'delivery', 'transports', 'entries', 'client'].flatMap(sources);
    const wrong = all.flatMap((file) => imports(file).filter((t) => entryPoints.includes(t)).map((t) => `${file} -> ${t}`));
    expect(wrong).toEqual([]);
  });
});

describe('what transports and handlers may read', () => {
  const rules: [RegExp, string][] = [
    [/\.text\s*[!=]==/, "compares a reply's text"],
    [/startsWith\('\{"/, 'spots an event by a JSON prefix'],
    [/JSON\.parse/, 'parses JSON it did not receive from a client'],
    [/\.(inbox|lobby)\b/, 'reads inside a cursor'],
    [/\.cmd\s*[!=]==/, 'acts on a reply by its verb'],
  ];

  it('transports/ never reads what a command means out of texts, JSON or cursors', () => {
    const found = sources('transports').flatMap((file) => {
      const text = readFileSync(join(root, file), 'utf8');
      // Request bodies are JSON from clients: parsing those is the transport's job.
      return rules
        .filter(([pattern, what]) => pattern.test(text) && !(what.startsWith('parses JSON') && file === 'transports/http.ts'))
        .map(([, what]) => `${file} ${what}`);
    });
    expect(found).toEqual([]);
  });

  it('handlers/ hold cursors and pass them on; only state/ and delivery/ look inside', () => {
    const found = sources('handlers').filter((file) => /\.(inbox|lobby)\b/.test(readFileSync(join(root, file), 'utf8')));
    expect(found).toEqual([]);
  });

  it('the web client keeps no list of the command verbs (it asks GET /commands)', () => {
    const composer = readFileSync(join(root, 'web/assets/composer.js'), 'utf8');
    expect(composer).not.toMatch(/'whoelsesince'|"whoelsesince"/);
  });

  it('every room is listed here, so a new one gets its rules', () => {
    const rooms = readdirSync(root).filter(
      (name) => statSync(join(root, name)).isDirectory() && sources(name).length > 0 && !['test', 'node_modules', 'dist', 'docs', 'deploy'].includes(name) && !name.startsWith('.'),
    );
    expect(rooms.sort()).toEqual(Object.keys(allowed).sort());
  });
});
