/**
 * Proves the published shape (`npm run test:package`, run by .ci/run after the
 * tests): packs the package from a dist-less tree (so `prepare` must build it),
 * then, for each supported mongoose major, installs the tarball into a fresh
 * temporary project with `npm install <tarball> mongoose@<major>` and runs there:
 *
 *   1. a strict `tsc --noEmit` with `skipLibCheck: false` over the README's
 *      first TypeScript example and a use of `persistent-task-status/embedded`;
 *   2. the README example (compiled by tsc), against the test server;
 *   3. examples/legacy-0.0.1.cjs (the 0.0.1 callback API), against the test server;
 *   4. the embedded server from the installed package (FerretDB, using the
 *      binary this clone built, so nothing is compiled again);
 *   5. `npx pts --help`.
 *
 * Then, once, in a project holding only the tarball and mongoose (no
 * TypeScript, no tsx: production dependencies only), `npx pts epf --fixture
 * --json` ingests the fixture feed into the test server, and stdout must be
 * the summary object alone.
 *
 * Needs the npm registry (for the temporary projects' installs) and the test
 * server (tools/mongo-server.ts; MONGODB_URI if set, else FerretDB).
 *
 *   tsx tools/check-package.ts [--majors 8,9] [--keep]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ferretDbBinaryPath } from '../src/embedded/ferretdb-build.js';
import { startMongoServer } from './mongo-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { majors: { type: 'string', default: '8,9' }, keep: { type: 'boolean', default: false } } });
const majors = values.majors!.split(',').map((m) => m.trim()).filter(Boolean);
const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
};

const t0 = Date.now();
const secs = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;
const log = (line: string) => console.log(`check-package: ${line}`);

class CheckFailed extends Error {}

/** Runs a command and returns its stdout; throws with all its output when it fails. */
function run(cmd: string, args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): string {
  const r = spawnSync(cmd, args, {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    encoding: 'utf8',
    timeout: o.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) {
    const how = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
    throw new CheckFailed(`\`${cmd} ${args.join(' ')}\` in ${o.cwd} failed (${how}):\n${output.trim()}`);
  }
  return r.stdout ?? '';
}

function step<T>(what: string, fn: () => T): T {
  const started = Date.now();
  const result = fn();
  log(`  ok  ${what} (${secs(started)})`);
  return result;
}

/** The README's first TypeScript block that imports the package, as test/readme.examples.test.ts finds it. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const code = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((c) => c.includes("from 'persistent-task-status'"));
  if (!code) throw new CheckFailed('README.md has no ```ts example importing persistent-task-status');
  return [
    code,
    '// Added by tools/check-package.ts: a run that did not succeed fails the check.',
    "if (result.status !== 'succeeded') throw new Error(`the run ended as ${result.status}`);",
    'await connection.close();',
    '',
  ].join('\n');
}

const EMBEDDED_CHECK = `import mongoose from 'mongoose';
import { startEmbeddedMongo, type EmbeddedMongo } from 'persistent-task-status/embedded';

const server: EmbeddedMongo = await startEmbeddedMongo({ dataDir: '.pts-data', useMongodbUri: false, download: false });
const connection = await mongoose.createConnection(server.uri, { dbName: 'check' }).asPromise();
await connection.collection('runs').insertOne({ at: new Date() });
console.log(\`embedded \${server.kind}: \${await connection.collection('runs').countDocuments()} run(s)\`);
await connection.close();
await server.stop();
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    types: ['node'],
    outDir: 'out',
    noEmitOnError: true,
  },
  files: ['readme-example.ts', 'embedded-check.ts'],
};

function pack(work: string): string {
  // A clone's tree without dist/: `npm pack` must build it (prepare).
  const tree = path.join(work, 'tree');
  fs.mkdirSync(tree);
  const tracked = run('git', ['ls-files', '-z'], { cwd: ROOT }).split('\0').filter(Boolean);
  for (const f of tracked) {
    if (!fs.existsSync(path.join(ROOT, f))) continue;
    fs.mkdirSync(path.dirname(path.join(tree, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(tree, f));
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'), 'dir');
  const out = run('npm', ['pack', '--json', '--pack-destination', work], { cwd: tree, timeoutMs: 300_000 });
  const [info] = JSON.parse(out.slice(out.indexOf('[\n'))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info!.files.map((f) => f.path);
  for (const need of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/embedded.js', 'dist/embedded.cjs', 'dist/cli/main.js', 'ferretdb/main.go']) {
    if (!files.includes(need)) throw new CheckFailed(`the tarball lacks ${need}; it has: ${files.join(', ')}`);
  }
  return path.join(work, info!.filename);
}

/** `npx pts epf --fixture` from a production-only install (see the module comment). */
function checkEpf(work: string, tarball: string, uri: string): void {
  const started = Date.now();
  log('EPF job, production dependencies only');
  const dir = path.join(work, 'epf');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'check-epf', private: true, type: 'module' }, null, 2)}\n`);
  step('npm install --omit=dev <tarball> mongoose', () =>
    run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error', tarball, `mongoose@${rootPkg.devDependencies.mongoose}`], {
      cwd: dir,
      timeoutMs: 300_000,
    }),
  );
  for (const dev of ['tsx', 'tsup', 'typescript']) {
    if (fs.existsSync(path.join(dir, 'node_modules', dev))) throw new CheckFailed(`the production install holds ${dev}`);
  }
  step('npx pts epf --fixture --json ingests the fixture feed', () => {
    const out = run('npx', ['--no-install', 'pts', 'epf', '--fixture', '--json'], { cwd: dir, env: { MONGODB_URI: uri }, timeoutMs: 900_000 });
    const lines = out.split('\n').filter((l) => l.trim() !== '');
    if (lines.length !== 1) throw new CheckFailed(`stdout must hold the summary only, got:\n${out}`);
    const summary = JSON.parse(lines[0]!) as { status: string; files: { ingested: number; failed: number } };
    if (summary.status !== 'succeeded' || summary.files.ingested === 0 || summary.files.failed !== 0) {
      throw new CheckFailed(`unexpected summary: ${lines[0]}`);
    }
    log(`      ${summary.files.ingested} files ingested`);
  });
  log(`  EPF job done in ${secs(started)}`);
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-check-package-'));
  const server = await startMongoServer({ log: () => {} });
  const uriFor = (db: string) => {
    const u = new URL(server.uri);
    u.pathname = `/${db.replace(/[^A-Za-z0-9_]/g, '_')}`;
    return u.href;
  };
  const ferretDbCache = path.dirname(await ferretDbBinaryPath());
  try {
    log(`packing from a tree without dist/ (in ${work})`);
    const tarball = step('npm pack builds dist (prepare) and ships it', () => pack(work));
    for (const major of majors) {
      const started = Date.now();
      log(`mongoose ${major}`);
      const dir = path.join(work, `mongoose-${major}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: `check-${major}`, private: true, type: 'module' }, null, 2)}\n`);
      step(`npm install <tarball> mongoose@${major} typescript @types/node`, () =>
        run(
          'npm',
          [
            'install', '--no-audit', '--no-fund', '--loglevel=error', tarball, `mongoose@${major}`,
            `typescript@${rootPkg.devDependencies.typescript}`, `@types/node@${rootPkg.devDependencies['@types/node']}`,
          ],
          { cwd: dir, timeoutMs: 300_000 },
        ),
      );
      const installed = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'mongoose', 'package.json'), 'utf8')).version as string;
      const copies = run('npm', ['ls', 'mongoose', '--all', '--parseable'], { cwd: dir }).trim().split('\n').filter(Boolean);
      if (copies.length !== 1) throw new CheckFailed(`expected one mongoose in the project, found: ${copies.join(', ')}`);
      log(`      mongoose ${installed}, one copy`);

      fs.writeFileSync(path.join(dir, 'readme-example.ts'), readmeExample());
      fs.writeFileSync(path.join(dir, 'embedded-check.ts'), EMBEDDED_CHECK);
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
      fs.copyFileSync(path.join(ROOT, 'examples', 'legacy-0.0.1.cjs'), path.join(dir, 'legacy-0.0.1.cjs'));

      step('tsc --noEmit (strict, skipLibCheck: false)', () => run('npx', ['tsc', '--noEmit', '-p', '.'], { cwd: dir }));
      step('README example runs', () => {
        run('npx', ['tsc', '-p', '.', '--noCheck'], { cwd: dir }); // checked just above
        run(process.execPath, ['out/readme-example.js'], { cwd: dir, env: { MONGODB_URI: uriFor(`check_readme_${major}`) }, timeoutMs: 60_000 });
      });
      step('examples/legacy-0.0.1.cjs runs', () =>
        run(process.execPath, ['legacy-0.0.1.cjs'], { cwd: dir, env: { MONGODB_URI: uriFor(`check_legacy_${major}`) }, timeoutMs: 60_000 }),
      );
      step('persistent-task-status/embedded starts a server', () => {
        const out = run(process.execPath, ['out/embedded-check.js'], {
          cwd: dir,
          env: { MONGODB_URI: '', PTS_FERRETDB_CACHE_DIR: ferretDbCache },
          timeoutMs: 180_000,
        });
        if (!/embedded \S+: 1 run\(s\)/.test(out)) throw new CheckFailed(`unexpected output:\n${out}`);
      });
      step('npx pts --help', () => {
        const out = run('npx', ['--no-install', 'pts', '--help'], { cwd: dir });
        if (!/Usage: pts/.test(out)) throw new CheckFailed(`unexpected output:\n${out}`);
      });
      log(`  mongoose ${major} done in ${secs(started)}`);
    }
    checkEpf(work, tarball, uriFor('check_epf'));
    log(`all checks passed for mongoose ${majors.join(' and ')} in ${secs(t0)}`);
  } finally {
    await server.stop();
    if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
    else log(`kept ${work}`);
  }
}

main().catch((err: unknown) => {
  console.error(`check-package: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
