/**
 * Builds the FerretDB server of the embedded database (FerretDB v1 over
 * SQLite; its small Go wrapper ships in the package's `ferretdb/` folder)
 * with the Go toolchain, and caches the binary, rebuilding only when the
 * sources, the FerretDB version or the platform change. The Go module proxy
 * supplies FerretDB's own modules on the first build.
 *
 * The binary lives in `<package>/.cache/` (the clone's, or the installed
 * package's in node_modules) or, when that is not writable, in
 * `~/.cache/persistent-task-status/`; `PTS_FERRETDB_CACHE_DIR` overrides both.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultLog, EmbeddedServerError, packageRoot, PREFIX } from './shared.js';

/** The FerretDB release the wrapper in `ferretdb/go.mod` is built against. */
export const FERRETDB_VERSION = 'v1.24.2';
/** Folder of the Go wrapper's sources (`main.go`, `go.mod`, `go.sum`). */
export const ferretDbSourceDir = (): string => path.join(packageRoot(), 'ferretdb');
const BINARY_NAME = 'ferretdb-test-server';

/** What to install or set when FerretDB cannot be built here. */
export const NO_GO_HINT =
  'The embedded database needs either mongodb-memory-server (`npm install -D mongodb-memory-server`, it downloads a real mongod) ' +
  'or the Go toolchain (go >= 1.24, https://go.dev/dl/) to build FerretDB; or set MONGODB_URI to a MongoDB server you have.';

async function writable(dir: string): Promise<boolean> {
  try {
    await fsp.mkdir(dir, { recursive: true });
    await fsp.access(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where the FerretDB binary is (or will be) cached; see the module comment. */
export async function ferretDbBinaryPath(): Promise<string> {
  const override = process.env.PTS_FERRETDB_CACHE_DIR?.trim();
  if (override) return path.join(path.resolve(override), BINARY_NAME);
  const local = path.join(packageRoot(), '.cache');
  if (await writable(local)) return path.join(local, BINARY_NAME);
  return path.join(os.homedir(), '.cache', 'persistent-task-status', BINARY_NAME);
}

const BUILD_TIMEOUT_MS = 15 * 60_000;
const LOCK_STALE_MS = BUILD_TIMEOUT_MS + 60_000;

async function sourceStamp(): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`ferretdb ${FERRETDB_VERSION}\n${process.platform}-${process.arch}\n`);
  for (const name of ['main.go', 'go.mod', 'go.sum']) {
    hash.update(`${name}\n`);
    hash.update(await fsp.readFile(path.join(ferretDbSourceDir(), name)));
  }
  return hash.digest('hex');
}

async function isBuilt(binary: string, stamp: string): Promise<boolean> {
  try {
    await fsp.access(binary, fs.constants.X_OK);
    return (await fsp.readFile(`${binary}.stamp`, 'utf8')).trim() === stamp;
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
async function acquireBuildLock(binary: string, log: (line: string) => void): Promise<() => Promise<void>> {
  const lockPath = `${binary}.lock`;
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
      log(`${PREFIX} waiting for another process that is building FerretDB…`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function goEnv(cacheDir: string): NodeJS.ProcessEnv {
  // Pure-Go build (SQLite is modernc.org/sqlite), so no C compiler is needed.
  const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0' };
  // Bare CI containers sometimes have no HOME, and then go has nowhere to put
  // its caches; keep them beside the binary instead.
  if (!env.HOME && !env.XDG_CACHE_HOME && !env.GOCACHE) env.GOCACHE = path.join(cacheDir, 'go-build');
  if (!env.HOME && !env.GOPATH && !env.GOMODCACHE) env.GOPATH = path.join(cacheDir, 'gopath');
  return env;
}

function runGoBuild(out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['build', '-buildvcs=false', '-trimpath', '-o', out, '.'], {
      cwd: ferretDbSourceDir(),
      env: goEnv(path.dirname(out)),
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
          ? ` (no Go toolchain on PATH). ${NO_GO_HINT}`
          : '.';
      reject(new EmbeddedServerError(`${PREFIX} could not run \`go build\` for FerretDB: ${err.message}${hint}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new EmbeddedServerError(
            `${PREFIX} \`go build\` of FerretDB failed (${signal ?? `exit code ${code}`}) in ${ferretDbSourceDir()}:\n${output.trim()}`,
          ),
        );
    });
  });
}

/**
 * Makes sure the FerretDB binary exists and matches the shipped sources,
 * building it if needed (about a minute, once). Safe to call from several
 * processes at once. Returns the binary's path.
 * @throws EmbeddedServerError when Go is missing or the build fails.
 */
export async function ensureFerretDbBinary(
  opts: { log?: (line: string) => void; force?: boolean } = {},
): Promise<string> {
  const log = opts.log ?? defaultLog;
  const binary = await ferretDbBinaryPath();
  const stamp = await sourceStamp();
  if (!opts.force && (await isBuilt(binary, stamp))) return binary;

  await fsp.mkdir(path.dirname(binary), { recursive: true });
  const release = await acquireBuildLock(binary, log);
  try {
    if (!opts.force && (await isBuilt(binary, stamp))) return binary; // built while we waited
    log(`${PREFIX} building FerretDB ${FERRETDB_VERSION} with Go (first run only, about a minute)…`);
    const started = Date.now();
    const tmp = `${binary}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await runGoBuild(tmp);
      await fsp.rename(tmp, binary);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    const stampTmp = `${binary}.stamp.tmp-${process.pid}`;
    await fsp.writeFile(stampTmp, `${stamp}\n`);
    await fsp.rename(stampTmp, `${binary}.stamp`);
    log(`${PREFIX} FerretDB built in ${Math.round((Date.now() - started) / 1000)}s: ${binary}`);
    return binary;
  } finally {
    await release();
  }
}
