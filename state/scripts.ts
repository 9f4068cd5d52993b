import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Loads the Lua scripts of state/lua, each named `<name>-<numberOfKeys>.lua`,
 * expanding `--@include <piece>` lines with state/lua/includes/<piece>.lua.
 */
export interface ScriptSource {
  name: string;
  numberOfKeys: number;
  lua: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const luaDir = join(here, 'lua');

/** Expands includes, each piece once, nested pieces first. */
function expand(source: string, included = new Set<string>()): string {
  return source.replace(/^--@include (\w+)$/gm, (_line, piece: string) => {
    if (included.has(piece)) return '';
    included.add(piece);
    return expand(readFileSync(join(luaDir, 'includes', `${piece}.lua`), 'utf8'), included);
  });
}

export function loadScripts(): ScriptSource[] {
  return readdirSync(luaDir)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const match = /^(.+)-(\d+)\.lua$/.exec(file);
      if (!match) throw new Error(`Lua script ${file} must be named <name>-<numberOfKeys>.lua`);
      const name = match[1].replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());
      return { name, numberOfKeys: Number(match[2]), lua: expand(readFileSync(join(luaDir, file), 'utf8')) };
    });
}
