/**
 * The published shape: the real tsup config builds ESM and CommonJS, and
 * both `require('persistent-task-status')` (how 0.0.1 users load it) and
 * `import` work. The 0.0.1 callback example then runs, unchanged, on the
 * CommonJS build against the test server.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'tsup';
import { afterAll, beforeAll, expect, it } from 'vitest';
import config from '../tsup.config.js';
import { REPO_ROOT } from './support/child.js';
import { useTestDatabase, type TestDatabase } from './support/database.js';

const pkgDir = path.join(REPO_ROOT, '.cache', `package-test-${process.pid}`);
let db: TestDatabase;

beforeAll(async () => {
  db = await useTestDatabase();
  fs.rmSync(pkgDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(pkgDir, 'examples'), { recursive: true });
  for (const options of config as Array<Record<string, unknown>>) {
    await build({ ...options, outDir: path.join(pkgDir, 'dist'), dts: false, sourcemap: false, clean: false, silent: true });
  }
  // The package's own manifest, so `persistent-task-status` resolves through its "exports".
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.copyFileSync(path.join(REPO_ROOT, 'examples', 'legacy-0.0.1.cjs'), path.join(pkgDir, 'examples', 'legacy-0.0.1.cjs'));
}, 120_000);
afterAll(async () => {
  fs.rmSync(pkgDir, { recursive: true, force: true });
  await db.drop();
});

const node = (args: string[], env: Record<string, string> = {}) =>
  execFileSync(process.execPath, args, { cwd: pkgDir, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });

it('require() and import expose the same API', () => {
  const probe = `const p = SOURCE; console.log(JSON.stringify({ client: typeof p.client?.getOrCreateTaskContainer, Runner: typeof p.Runner, defineContainer: typeof p.defineContainer, keys: Object.keys(p).sort() }));`;
  const cjs = JSON.parse(node(['-e', probe.replace('SOURCE', "require('persistent-task-status')")]));
  const esm = JSON.parse(
    node(['--input-type=module', '-e', `import * as m from 'persistent-task-status'; ${probe.replace('SOURCE', 'm')}`]),
  );
  expect(cjs).toMatchObject({ client: 'function', Runner: 'function', defineContainer: 'function' });
  expect(esm.keys).toEqual(cjs.keys);
});

it('the embedded server is the subpath persistent-task-status/embedded, for require() and import', () => {
  const probe = `const e = SOURCE; console.log(JSON.stringify({ start: typeof e.startEmbeddedMongo, port: e.DEFAULT_DB_PORT }));`;
  const cjs = JSON.parse(node(['-e', probe.replace('SOURCE', "require('persistent-task-status/embedded')")]));
  const esm = JSON.parse(
    node(['--input-type=module', '-e', `import * as m from 'persistent-task-status/embedded'; ${probe.replace('SOURCE', 'm')}`]),
  );
  expect(cjs).toEqual({ start: 'function', port: 27018 });
  expect(esm).toEqual(cjs);
});

it('the 0.0.1 callback example runs unchanged on the CommonJS build', () => {
  const out = node(['examples/legacy-0.0.1.cjs'], { MONGODB_URI: db.uriWithDb });
  expect(out).toContain('container nightly-import (new: true)');
  expect(out).toMatch(/download complete after \d+ ms/);
  expect(out).toContain('all complete: true');
  expect(out).toContain('deleted nightly-import');
});
