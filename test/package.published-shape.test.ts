/**
 * What `npm pack` publishes: mongoose is the user's (a peer, never bundled),
 * every other runtime import is a regular dependency, the tarball is built by
 * `prepare`, and it carries the embedded server's FerretDB sources. The full
 * install-into-a-fresh-project check (both mongoose majors, tsc with
 * skipLibCheck: false) is tools/check-package.ts, run by .ci/run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import config from '../tsup.config.js';
import { REPO_ROOT } from './support/child.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
const outDir = path.join(REPO_ROOT, '.cache', `published-shape-${process.pid}`);

beforeAll(async () => {
  fs.rmSync(outDir, { recursive: true, force: true });
  for (const options of config as Array<Record<string, unknown>>) {
    await build({ ...options, outDir, dts: false, sourcemap: false, clean: false, silent: true });
  }
}, 120_000);
afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

const builtFiles = () => fs.readdirSync(outDir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.c?js$/.test(f));
const read = (f: string) => fs.readFileSync(path.join(outDir, f), 'utf8');

/** Bare package names a built file imports or requires (statically). */
function importedPackages(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([^"'./][^"']*)["']/g)) {
    const spec = m[1]!;
    if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue;
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
  }
  return names;
}

describe('package.json', () => {
  it('mongoose is a peer dependency covering majors 8 and 9, not a regular one; the project tests with 9', () => {
    expect(pkg.peerDependencies?.mongoose).toBe('^8.0.0 || ^9.0.0');
    expect(pkg.dependencies?.mongoose).toBeUndefined();
    expect(pkg.devDependencies?.mongoose).toMatch(/^\^9\./);
  });

  it('mongodb-memory-server is an optional peer (the embedded server uses it when installed)', () => {
    expect(pkg.peerDependencies?.['mongodb-memory-server']).toBeDefined();
    expect(pkg.peerDependenciesMeta?.['mongodb-memory-server']).toEqual({ optional: true });
    expect(pkg.dependencies?.['mongodb-memory-server']).toBeUndefined();
  });

  it('packing and git installs build dist first (prepare)', () => {
    expect(pkg.scripts.prepare).toBe('node tools/prepare.mjs');
    expect(pkg.scripts.build).toBe('tsup');
    expect(fs.readFileSync(path.join(REPO_ROOT, 'tools', 'prepare.mjs'), 'utf8')).toMatch(/spawnSync\('npm', \['run', 'build'\]/);
  });

  it('a production install in a clone (no tsup) skips the build instead of failing', () => {
    // `npm ci --omit=dev` runs prepare without devDependencies; it used to stop at `tsup: not found`.
    const clone = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-prepare-'));
    try {
      fs.mkdirSync(path.join(clone, 'tools'));
      fs.copyFileSync(path.join(REPO_ROOT, 'tools', 'prepare.mjs'), path.join(clone, 'tools', 'prepare.mjs'));
      fs.writeFileSync(path.join(clone, 'package.json'), JSON.stringify({ name: 'clone', type: 'module', scripts: pkg.scripts }));
      const r = spawnSync('npm', ['run', '--silent', 'prepare'], { cwd: clone, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/tsup \(a devDependency\) is not installed; dist\/ is not built/);
      expect(fs.existsSync(path.join(clone, 'dist'))).toBe(false);
    } finally {
      fs.rmSync(clone, { recursive: true, force: true });
    }
  });

  it('exports the EPF job as an ESM subpath (htmlparser2 is ESM only)', () => {
    expect(pkg.exports['./epf']).toEqual({ import: { types: './dist/epf.d.ts', default: './dist/epf.js' } });
    for (const dep of ['hash-wasm', 'htmlparser2', 'tar-stream', 'unbzip2-stream']) expect(pkg.dependencies[dep], dep).toBeDefined();
  });

  it('exports the embedded server as a subpath, for import and require', () => {
    expect(pkg.exports['./embedded']).toEqual({
      import: { types: './dist/embedded.d.ts', default: './dist/embedded.js' },
      require: { types: './dist/embedded.d.cts', default: './dist/embedded.cjs' },
    });
  });

  it('the tarball carries dist, the README, the licence and the FerretDB sources the embedded server builds', () => {
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' }),
    ) as Array<{ files: Array<{ path: string }> }>;
    const files = packed!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'package.json', 'ferretdb/main.go', 'ferretdb/go.mod', 'ferretdb/go.sum']));
    expect(files.filter((f) => !f.startsWith('dist/') && !f.startsWith('ferretdb/')).sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
  });
});

describe('dist (the real tsup config)', () => {
  it('builds index and embedded for ESM and CommonJS, epf for ESM, and the pts command', () => {
    expect(builtFiles()).toEqual(
      expect.arrayContaining(['index.js', 'index.cjs', 'embedded.js', 'embedded.cjs', 'epf.js', path.join('cli', 'main.js')]),
    );
  });

  it('carries no copy of mongoose or the mongodb driver: every build imports the user\'s', () => {
    for (const f of builtFiles()) {
      const code = read(f);
      expect(code, f).not.toMatch(/node_modules[\\/](mongoose|mongodb)[\\/]/);
      expect(code, f).not.toMatch(/NativeConnection|class MongoClient\b/);
    }
    for (const f of ['index.cjs', 'embedded.cjs']) expect(importedPackages(read(f)), f).toContain('mongoose');
    const esmChunks = builtFiles().filter((f) => f.endsWith('.js'));
    expect(esmChunks.some((f) => importedPackages(read(f)).has('mongoose'))).toBe(true);
  });

  it('imports only packages that are dependencies or peers', () => {
    const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
    for (const f of builtFiles()) {
      for (const name of importedPackages(read(f))) expect(allowed, `${f} imports ${name}`).toContain(name);
    }
    for (const name of Object.keys(pkg.dependencies)) expect(Object.keys(pkg.devDependencies)).not.toContain(name);
  });
});
