/**
 * The scheduler example (examples/hourly-schedule.mjs) under plain node, on
 * the built package: SIGINT and SIGTERM each stop it gracefully and the
 * process exits 0 (the README's earlier example never exited after SIGINT:
 * its connection stayed open; and it ignored SIGTERM).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'tsup';
import { afterAll, beforeAll, expect, it } from 'vitest';
import config from '../tsup.config.js';
import { REPO_ROOT } from './support/child.js';
import { useTestDatabase, type TestDatabase } from './support/database.js';

const pkgDir = path.join(REPO_ROOT, '.cache', `scheduler-example-${process.pid}`);
let db: TestDatabase;

beforeAll(async () => {
  db = await useTestDatabase();
  fs.rmSync(pkgDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(pkgDir, 'examples'), { recursive: true });
  for (const options of config as Array<Record<string, unknown>>) {
    await build({ ...options, outDir: path.join(pkgDir, 'dist'), dts: false, sourcemap: false, clean: false, silent: true });
  }
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.copyFileSync(path.join(REPO_ROOT, 'examples', 'hourly-schedule.mjs'), path.join(pkgDir, 'examples', 'hourly-schedule.mjs'));
}, 180_000);
afterAll(async () => {
  fs.rmSync(pkgDir, { recursive: true, force: true });
  await db.drop();
});

it.each(['SIGINT', 'SIGTERM'] as const)('exits 0 on %s under plain node', async (signal) => {
  const child = spawn(process.execPath, ['examples/hourly-schedule.mjs'], {
    cwd: pkgDir,
    env: { ...process.env, MONGODB_URI: db.uriWithDb },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, sig) => resolve({ code, signal: sig })),
  );
  try {
    const deadline = Date.now() + 60_000;
    while (!out.includes('scheduler started') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    expect(out, err).toContain('scheduler started');
    child.kill(signal);
    const exit = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
    expect(exit, `${out}\n${err}`).toEqual({ code: 0, signal: null });
    expect(out).toContain(`${signal}: stopping`);
    expect(out).toContain('stopped');
  } finally {
    child.kill('SIGKILL');
  }
}, 180_000);
