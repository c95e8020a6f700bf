/**
 * Starts a MongoDB-compatible server for tests, examples and local runs.
 *
 * Choice order:
 *   1. `MONGODB_URI` is set: use it as is (nothing is started).
 *   2. mongodb-memory-server (a real mongod), but only when a mongod binary is
 *      already at hand (`MONGOMS_SYSTEM_BINARY`, `mongod` on PATH, or a binary
 *      in mongodb-memory-server's cache) or `PTS_TRY_MONGOMS_DOWNLOAD=1` allows
 *      it to download one. Bounded by a timeout; on any failure we fall back.
 *   3. FerretDB v1 over SQLite, built from tools/ferretdb with the Go toolchain
 *      on first use and cached (see ./ferretdb-build.ts).
 *
 * Everything here is dev tooling: it is not part of the published package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { defaultLog, ensureFerretDbBinary, FERRETDB_VERSION, PREFIX } from './ferretdb-build.js';

// Kept importable from here for existing callers.
export {
  ensureFerretDbBinary,
  FERRETDB_BINARY,
  FERRETDB_SOURCE_DIR,
  FERRETDB_VERSION,
  REPO_ROOT,
} from './ferretdb-build.js';

export type MongoServerKind = 'external' | 'mongodb-memory-server' | 'ferretdb';

export interface StartMongoServerOptions {
  /** Directory for server data. Required when `persistent` is true. */
  dataDir?: string;
  /**
   * Keep data across restarts: mongod uses `<dataDir>/mongod`, FerretDB uses
   * `<dataDir>/ferretdb`. When false (default) data lives in a temporary
   * directory that is removed by `stop()`.
   */
  persistent?: boolean;
  /** Progress lines; defaults to writing to stderr. */
  log?: (line: string) => void;
}

export interface MongoServer {
  /** Connection string without a database name, e.g. `mongodb://127.0.0.1:40123/`. */
  uri: string;
  kind: MongoServerKind;
  /** Stops the server (no-op for 'external'). Safe to call more than once. */
  stop(): Promise<void>;
}

const MONGOMS_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export async function startMongoServer(opts: StartMongoServerOptions = {}): Promise<MongoServer> {
  const log = opts.log ?? defaultLog;
  const persistent = opts.persistent ?? false;
  if (persistent && !opts.dataDir) {
    throw new TypeError(`${PREFIX} startMongoServer({ persistent: true }) needs a dataDir`);
  }
  const dataDir = opts.dataDir ? path.resolve(opts.dataDir) : undefined;

  const external = process.env.MONGODB_URI?.trim();
  if (external) {
    log(`${PREFIX} using the MongoDB server from MONGODB_URI`);
    return { uri: external, kind: 'external', stop: async () => {} };
  }

  const real = await tryMongoMemoryServer({ persistent, dataDir, log });
  if (real) return real;

  return startFerretDb({ persistent, dataDir, log });
}

// ---------------------------------------------------------------------------
// mongodb-memory-server
// ---------------------------------------------------------------------------

interface ResolvedOptions {
  persistent: boolean;
  dataDir: string | undefined;
  log: (line: string) => void;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function tryMongoMemoryServer(o: ResolvedOptions): Promise<MongoServer | undefined> {
  const envBinary = process.env.MONGOMS_SYSTEM_BINARY?.trim() || undefined;
  const pathBinary = envBinary ? undefined : findOnPath('mongod');
  const allowDownload = process.env.PTS_TRY_MONGOMS_DOWNLOAD === '1';

  let mms: typeof import('mongodb-memory-server');
  try {
    const mod = (await import('mongodb-memory-server')) as typeof import('mongodb-memory-server') & {
      default?: typeof import('mongodb-memory-server');
    };
    mms = mod.MongoMemoryServer ? mod : (mod.default ?? mod);
  } catch {
    return undefined; // not installed (e.g. production install): use FerretDB
  }

  let reason: string | undefined;
  if (envBinary) reason = `MONGOMS_SYSTEM_BINARY=${envBinary}`;
  else if (pathBinary) reason = `mongod on PATH (${pathBinary})`;
  else {
    try {
      const { DryMongoBinary } = mms;
      const cached = await withTimeout(
        DryMongoBinary.locateBinary(DryMongoBinary.getEnsuredOptions()),
        10_000,
        'looking for a cached mongod',
      );
      if (cached) reason = `cached mongod (${cached})`;
    } catch {
      // treat as "no cached binary"
    }
  }
  if (!reason && allowDownload) reason = 'PTS_TRY_MONGOMS_DOWNLOAD=1 (may download mongod)';
  if (!reason) return undefined;

  o.log(`${PREFIX} starting mongod via mongodb-memory-server: ${reason}`);
  let dbPath: string | undefined;
  if (o.persistent && o.dataDir) {
    dbPath = path.join(o.dataDir, 'mongod');
    await fsp.mkdir(dbPath, { recursive: true });
  }
  const creating = mms.MongoMemoryServer.create({
    instance: dbPath ? { dbPath, storageEngine: 'wiredTiger' } : {},
    ...(pathBinary ? { binary: { systemBinary: pathBinary } } : {}),
  });
  try {
    const server = await withTimeout(creating, MONGOMS_TIMEOUT_MS, 'mongodb-memory-server');
    let stopped: Promise<void> | undefined;
    return {
      uri: server.getUri(),
      kind: 'mongodb-memory-server',
      stop: () =>
        (stopped ??= server.stop({ doCleanup: !o.persistent, force: false }).then(() => undefined)),
    };
  } catch (err) {
    // If it is still starting, make sure it does not linger once it does start.
    creating.then((s) => s.stop()).catch(() => {});
    o.log(`${PREFIX} mongodb-memory-server failed (${errorMessage(err)}); falling back to FerretDB`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// FerretDB: run
// ---------------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (racy by nature; callers retry on EADDRINUSE). */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

async function ping(uri: string): Promise<void> {
  const client = new mongoose.mongo.MongoClient(uri, {
    serverSelectionTimeoutMS: 2000,
    connectTimeoutMS: 2000,
  });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close().catch(() => {});
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startFerretDb(o: ResolvedOptions): Promise<MongoServer> {
  const bin = await ensureFerretDbBinary({ log: o.log });

  let dir: string;
  let temporary: boolean;
  if (o.persistent && o.dataDir) {
    dir = path.join(o.dataDir, 'ferretdb');
    await fsp.mkdir(dir, { recursive: true });
    temporary = false;
  } else {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pts-ferretdb-'));
    temporary = true;
  }

  try {
    for (let attempt = 1; ; attempt++) {
      const port = await getFreePort();
      try {
        return await launchFerretDb(bin, port, dir, temporary, o);
      } catch (err) {
        if (attempt < 3 && /address already in use/i.test(errorMessage(err))) continue;
        throw err;
      }
    }
  } catch (err) {
    if (temporary) await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launchFerretDb(
  bin: string,
  port: number,
  dir: string,
  temporary: boolean,
  o: ResolvedOptions,
): Promise<MongoServer> {
  const logLevel = process.env.PTS_FERRETDB_LOG_LEVEL || 'error';
  const child: ChildProcess = spawn(
    bin,
    [
      '-listen',
      `127.0.0.1:${port}`,
      '-dir',
      dir,
      '-log-level',
      logLevel,
      '-exit-on-stdin-eof',
      ...(temporary ? ['-remove-dir-on-exit'] : []),
    ],
    // stdin stays open: when this process dies (even by SIGKILL), the pipe
    // closes and the server exits by itself.
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );

  let tail = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      if (child.pid === undefined) {
        exit = { code: null, signal: null };
        resolve();
      }
    });
  });
  child.stdin?.on('error', () => {}); // EPIPE if the server is gone; nothing to do
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    tail = (tail + text).slice(-4000);
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) o.log(`[ferretdb] ${line}`);
  });

  // Do not keep the event loop alive just for the server; the exit hook and
  // the stdin pipe take care of it when this process goes away.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as net.Socket | null)?.unref?.();

  const onExit = () => {
    try {
      child.kill(temporary ? 'SIGKILL' : 'SIGTERM');
    } catch {
      // already gone
    }
    if (temporary) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  };
  process.on('exit', onExit);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.off('exit', onExit);
      if (!exit) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const graceful = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(false), STOP_GRACE_MS);
          }),
        ]);
        clearTimeout(timer);
        if (!graceful) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      child.stdin?.destroy();
      if (temporary) await fsp.rm(dir, { recursive: true, force: true });
    })());

  const uri = `mongodb://127.0.0.1:${port}/`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = '';
  try {
    for (;;) {
      if (exit) {
        const how = spawnError
          ? spawnError.message
          : exit.signal
            ? `killed by ${exit.signal}`
            : `exit code ${exit.code}`;
        throw new Error(
          `${PREFIX} the FerretDB test server (${bin}) died during startup (${how}). Output:\n${tail.trim() || '(none)'}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${PREFIX} the FerretDB test server did not become ready on 127.0.0.1:${port} within ${READY_TIMEOUT_MS / 1000}s` +
            `${lastError ? ` (last error: ${lastError})` : ''}. Output:\n${tail.trim() || '(none)'}`,
        );
      }
      if (await canConnect(port)) {
        try {
          await ping(uri);
          break;
        } catch (err) {
          lastError = errorMessage(err);
        }
      }
      await Promise.race([exited, sleep(100)]);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  o.log(
    `${PREFIX} FerretDB ${FERRETDB_VERSION} test server on ${uri} (${temporary ? 'temporary data' : `data in ${dir}`})`,
  );
  return { uri, kind: 'ferretdb', stop };
}
