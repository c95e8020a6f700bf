/**
 * Builds the FerretDB test server (FerretDB v1 over SQLite, sources in
 * tools/ferretdb) with the Go toolchain and caches the binary at
 * `<repo>/.cache/ferretdb-test-server`, rebuilding only when the sources, the
 * FerretDB version or the platform change. Used by ./mongo-server.ts on first
 * use and by ./build-ferretdb.ts (`npm run test:db`).
 *
 * Everything here is dev tooling: it is not part of the published package.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FERRETDB_VERSION = 'v1.24.2';
export const FERRETDB_SOURCE_DIR = path.join(REPO_ROOT, 'tools', 'ferretdb');
export const FERRETDB_BINARY = path.join(REPO_ROOT, '.cache', 'ferretdb-test-server');

const BUILD_TIMEOUT_MS = 15 * 60_000;
const LOCK_STALE_MS = BUILD_TIMEOUT_MS + 60_000;

/** Prefix of the progress lines and error messages of the dev tooling. */
export const PREFIX = 'persistent-task-status:';

export function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function sourceStamp(): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`ferretdb ${FERRETDB_VERSION}\n${process.platform}-${process.arch}\n`);
  for (const name of ['main.go', 'go.mod', 'go.sum']) {
    hash.update(`${name}\n`);
    hash.update(await fsp.readFile(path.join(FERRETDB_SOURCE_DIR, name)));
  }
  return hash.digest('hex');
}

const stampPath = `${FERRETDB_BINARY}.stamp`;
const lockPath = `${FERRETDB_BINARY}.lock`;

async function isBuilt(stamp: string): Promise<boolean> {
  try {
    await fsp.access(FERRETDB_BINARY, fs.constants.X_OK);
    return (await fsp.readFile(stampPath, 'utf8')).trim() === stamp;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Lock = a directory (mkdir is atomic) holding the owner's pid. */
async function acquireBuildLock(log: (line: string) => void): Promise<() => Promise<void>> {
  let announced = false;
  for (;;) {
    try {
      await fsp.mkdir(lockPath);
      await fsp.writeFile(path.join(lockPath, 'pid'), String(process.pid));
      return () => fsp.rm(lockPath, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Someone else holds it. Break it if stale.
    try {
      const st = await fsp.stat(lockPath);
      const pid = Number((await fsp.readFile(path.join(lockPath, 'pid'), 'utf8').catch(() => '')).trim());
      const age = Date.now() - st.mtimeMs;
      const ownerGone = Number.isInteger(pid) && pid > 0 ? !pidAlive(pid) : age > 10_000;
      if (ownerGone || age > LOCK_STALE_MS) {
        await fsp.rm(lockPath, { recursive: true, force: true });
        continue;
      }
    } catch {
      continue; // vanished meanwhile: retry
    }
    if (!announced) {
      log(`${PREFIX} waiting for another process that is building the FerretDB test server…`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function goEnv(): NodeJS.ProcessEnv {
  // Pure-Go build (SQLite is modernc.org/sqlite), so no C compiler is needed.
  const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0' };
  // Bare CI containers sometimes have no HOME, and then go has nowhere to put
  // its caches; keep them in the repo's (gitignored) .cache instead.
  if (!env.HOME && !env.XDG_CACHE_HOME && !env.GOCACHE) env.GOCACHE = path.join(REPO_ROOT, '.cache', 'go-build');
  if (!env.HOME && !env.GOPATH && !env.GOMODCACHE) env.GOPATH = path.join(REPO_ROOT, '.cache', 'gopath');
  return env;
}

function runGoBuild(out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['build', '-buildvcs=false', '-trimpath', '-o', out, '.'], {
      cwd: FERRETDB_SOURCE_DIR,
      env: goEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      const hint =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? ' The Go toolchain (go >= 1.24) is needed to build the FerretDB test server; install it, or set MONGODB_URI to an existing MongoDB, or MONGOMS_SYSTEM_BINARY to a mongod binary.'
          : '';
      reject(new Error(`${PREFIX} could not run \`go build\`: ${err.message}.${hint}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${PREFIX} \`go build\` of the FerretDB test server failed (${signal ?? `exit code ${code}`}) in ${FERRETDB_SOURCE_DIR}:\n${output.trim()}`,
          ),
        );
    });
  });
}

/**
 * Makes sure the FerretDB test server binary exists and matches the sources in
 * tools/ferretdb, building it if needed. Safe to call from several processes
 * at once. Returns the binary's path.
 */
export async function ensureFerretDbBinary(
  opts: { log?: (line: string) => void; force?: boolean } = {},
): Promise<string> {
  const log = opts.log ?? defaultLog;
  const stamp = await sourceStamp();
  if (!opts.force && (await isBuilt(stamp))) return FERRETDB_BINARY;

  await fsp.mkdir(path.dirname(FERRETDB_BINARY), { recursive: true });
  const release = await acquireBuildLock(log);
  try {
    if (!opts.force && (await isBuilt(stamp))) return FERRETDB_BINARY; // built while we waited
    log(`${PREFIX} building the FerretDB ${FERRETDB_VERSION} test server (first run only, about a minute)…`);
    const started = Date.now();
    const tmp = `${FERRETDB_BINARY}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await runGoBuild(tmp);
      await fsp.rename(tmp, FERRETDB_BINARY);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    const stampTmp = `${stampPath}.tmp-${process.pid}`;
    await fsp.writeFile(stampTmp, `${stamp}\n`);
    await fsp.rename(stampTmp, stampPath);
    log(`${PREFIX} FerretDB test server built in ${Math.round((Date.now() - started) / 1000)}s`);
    return FERRETDB_BINARY;
  } finally {
    await release();
  }
}
