// `npm start`: the built server under plain node, with no TypeScript
// compiler in memory beside it. Builds first when dist/ is missing or older
// than a source file (a fresh clone's first start, or after a `git pull`);
// `npm run dev` runs the sources through tsx instead, for development.
import { builtEntry, buildIfStale } from './build.mjs';

try {
  buildIfStale();
} catch {
  process.stderr.write('The build failed (above). It needs the dev dependencies: npm install\n');
  process.exit(1);
}
await import(builtEntry);
