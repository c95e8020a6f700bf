import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

/**
 * Where the browser assets are: `assets/` beside this file when run from
 * the sources, `dashboard-assets/` beside the bundle (copied there by the
 * build, see tsup.config.ts) when run from `dist/`.
 */
function assetDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, 'assets'), join(here, 'dashboard-assets'), join(here, '..', 'dashboard-assets')]) {
    if (existsSync(join(dir, 'app.js'))) return dir;
  }
  throw new Error(`persistent-task-status: the dashboard's assets are missing (looked beside ${here})`);
}

let cache: Map<string, { contentType: string; body: string }> | null = null;

/** A shipped asset by file name, or null. */
export function asset(name: string): { contentType: string; body: string } | null {
  if (!cache) {
    const dir = assetDir();
    cache = new Map(Object.entries(TYPES).map(([file, contentType]) => [file, { contentType, body: readFileSync(join(dir, file), 'utf8') }]));
  }
  return cache.get(name) ?? null;
}
