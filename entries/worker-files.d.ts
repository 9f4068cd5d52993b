/**
 * The module entries/worker-build.ts generates for the Worker's bundle
 * (into .wrangler/, at build time, so it is not there for the type check).
 */
declare module '*/worker-files.js' {
  /** What state/scripts.ts `loadScripts()` returned at build time. */
  export const scripts: { name: string; numberOfKeys: number; lua: string }[];
  /** What transports/web.ts `loadWebFiles()` read: URL path, content type, body in base64. */
  export const webFiles: [path: string, type: string, base64: string][];
}
