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

/**
 * The scripts as read at build time, for a host without a filesystem (the
 * Worker's bundle carries them); null: read state/lua.
 */
let bundled: ScriptSource[] | null = null;

/** Makes `loadScripts` return these (what it returned at build time) instead of reading files. */
export function useBundledScripts(scripts: ScriptSource[]): void {
  bundled = scripts;
}

/** Expands includes, each piece once, nested pieces first. */
function expand(luaDir: string, source: string, included = new Set<string>()): string {
  return source.replace(/^--@include (\w+)$/gm, (_line, piece: string) => {
    if (included.has(piece)) return '';
    included.add(piece);
    return expand(luaDir, readFileSync(join(luaDir, 'includes', `${piece}.lua`), 'utf8'), included);
  });
}

export function loadScripts(): ScriptSource[] {
  if (bundled) return bundled;
  // Resolved here, not at import: a bundle's module URL need not be a file.
  const luaDir = join(dirname(fileURLToPath(import.meta.url)), 'lua');
  return readdirSync(luaDir)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const match = /^(.+)-(\d+)\.lua$/.exec(file);
      if (!match) throw new Error(`Lua script ${file} must be named <name>-<numberOfKeys>.lua`);
      const name = match[1].replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());
      return { name, numberOfKeys: Number(match[2]), lua: expand(luaDir, readFileSync(join(luaDir, file), 'utf8')) };
    });
}
