/**
 * Chooses and starts the embedded server: MONGODB_URI, else a server that
 * another process already runs on the same data folder, else a real mongod
 * (mongodb-memory-server), else FerretDB built from Go.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { startFerretDb } from './ferretdb-run.js';
import { tryMemoryServer } from './memory-server.js';
import { EmbeddedServerError, firstLine, ping, PREFIX } from './shared.js';
import type { EmbeddedMongo, EmbeddedMongoKind } from './types.js';

/** Resolved options of {@link startServer}. */
export interface ServerOptions {
  /** Data folder (kept across runs); undefined: temporary data, removed by `stop()`. */
  dataDir: string | undefined;
  port: number | undefined;
  log: (line: string) => void;
  /** Use MONGODB_URI when it is set. */
  useMongodbUri: boolean;
  /** Let mongodb-memory-server download a mongod when none is at hand. */
  allowDownload: boolean;
}

/** Written into the data folder while a server runs on it, so that other processes share it. */
const STATE_FILE = 'server.json';
/** Held (created exclusively) while a process looks for, or starts, the server of a data folder. */
const START_LOCK = 'server.lock';
/** One file per process using the folder's shared FerretDB, named by its pid; the server exits when none is alive. */
const CLIENTS_DIR = 'clients';
/** How long a process waits for another one that is starting the folder's server. */
const START_LOCK_WAIT_MS = 120_000;

interface ServerState {
  pid: number;
  uri: string;
  kind: EmbeddedMongoKind;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The server another live process runs on `dataDir`, if it answers. */
async function runningOn(dataDir: string): Promise<ServerState | undefined> {
  let state: ServerState;
  try {
    state = JSON.parse(await fsp.readFile(path.join(dataDir, STATE_FILE), 'utf8')) as ServerState;
  } catch {
    return undefined;
  }
  if (!alive(state.pid)) return undefined;
  try {
    await ping(state.uri);
    return state;
  } catch {
    return undefined;
  }
}

/**
 * Takes the folder's start lock, so that two processes never start two
 * servers on one folder (two FerretDB processes on one SQLite folder break
 * it: each keeps its own catalogue of collections in memory, and the second
 * fails with "table already exists" and "disk I/O error"). A lock whose
 * holder died is taken over. Returns its release.
 * @throws EmbeddedServerError when a live holder keeps it for 2 minutes
 */
async function lockStart(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, START_LOCK);
  const deadline = Date.now() + START_LOCK_WAIT_MS;
  for (;;) {
    try {
      await fsp.writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      return () => fsp.rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
    const age = Date.now() - ((await fsp.stat(file).catch(() => null))?.mtimeMs ?? Date.now());
    if ((holder > 0 && !alive(holder)) || (!holder && age > 5_000)) {
      await fsp.rm(file, { force: true }); // its holder died
      continue;
    }
    if (Date.now() > deadline) {
      throw new EmbeddedServerError(
        `${PREFIX} process ${holder} has been starting the server of ${dataDir} for ${START_LOCK_WAIT_MS / 1000} s; stop it, or remove ${file} if it is gone`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Registers this process as a user of the folder's shared FerretDB; returns its leave (also run at exit). */
async function joinClients(dataDir: string): Promise<() => void> {
  const dir = path.join(dataDir, CLIENTS_DIR);
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, String(process.pid));
  await fsp.writeFile(file, '');
  const leave = () => {
    process.off('exit', leave);
    fs.rmSync(file, { force: true });
  };
  process.on('exit', leave);
  return leave;
}

/** Records `server` in its data folder until it stops (or this process exits). */
async function advertise(started: EmbeddedMongo, dataDir: string | undefined, serverPid = process.pid): Promise<EmbeddedMongo> {
  const server = { ...started, dataDir };
  if (!dataDir) return server;
  const file = path.join(dataDir, STATE_FILE);
  const state: ServerState = { pid: serverPid, uri: server.uri, kind: server.kind };
  await fsp.writeFile(file, `${JSON.stringify(state)}\n`);
  const forget = () => {
    try {
      const now = JSON.parse(fs.readFileSync(file, 'utf8')) as ServerState;
      // A shared server outlives this process: its record stays while it runs.
      if (now.pid === process.pid && serverPid === process.pid) fs.rmSync(file, { force: true });
    } catch {
      // gone already
    }
  };
  process.on('exit', forget);
  let stopping: Promise<void> | undefined;
  return {
    ...server,
    stop: () =>
      (stopping ??= server.stop().finally(() => {
        process.off('exit', forget);
        forget();
      })),
  };
}

/** True when a previous run left FerretDB data but no mongod data: keep using FerretDB so the run resumes. */
function hasOnlyFerretDbData(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, 'ferretdb')) && !fs.existsSync(path.join(dataDir, 'mongod'));
}

/**
 * Starts (or finds) the server; see the module comment for the order.
 * @throws EmbeddedServerError when neither mongod nor FerretDB can be had; the message says what to install or set.
 */
export async function startServer(o: ServerOptions): Promise<EmbeddedMongo> {
  const external = o.useMongodbUri ? process.env.MONGODB_URI?.trim() : undefined;
  if (external) {
    o.log(`${PREFIX} using the MongoDB server from MONGODB_URI`);
    return { uri: external, kind: 'external', dataDir: undefined, stop: async () => {} };
  }

  const dataDir = o.dataDir === undefined ? undefined : path.resolve(o.dataDir);
  if (!dataDir) return startNew(o, undefined);
  await fsp.mkdir(dataDir, { recursive: true });
  const release = await lockStart(dataDir);
  try {
    const shared = await runningOn(dataDir);
    if (shared) {
      o.log(`${PREFIX} using the ${shared.kind} server that process ${shared.pid} runs on ${dataDir}: ${shared.uri}`);
      const leave = shared.kind === 'ferretdb' ? await joinClients(dataDir) : () => {};
      return { uri: shared.uri, kind: shared.kind, dataDir, stop: async () => leave() };
    }
    return await startNew(o, dataDir);
  } finally {
    await release();
  }
}

/** Starts a server of our own: mongod when one can be had, else FerretDB (shared on a data folder). */
async function startNew(o: ServerOptions, dataDir: string | undefined): Promise<EmbeddedMongo> {
  if (!(dataDir && hasOnlyFerretDbData(dataDir))) {
    const attempt = await tryMemoryServer({
      dbPath: dataDir && path.join(dataDir, 'mongod'),
      port: o.port,
      allowDownload: o.allowDownload,
      log: o.log,
    });
    if ('server' in attempt) return advertise(attempt.server, dataDir);
    o.log(`${PREFIX} no mongod: ${attempt.skipped}; using FerretDB`);
  } else {
    o.log(`${PREFIX} ${dataDir} holds FerretDB data from an earlier run; using FerretDB`);
  }

  // On a data folder the server is shared: it runs until the last process using it is gone.
  const leave = dataDir ? await joinClients(dataDir) : undefined;
  try {
    const server = await startFerretDb({
      dataDir: dataDir && path.join(dataDir, 'ferretdb'),
      port: o.port,
      log: o.log,
      clientsDir: dataDir && path.join(dataDir, CLIENTS_DIR),
    });
    const advertised = await advertise(server, dataDir, dataDir ? server.serverPid : process.pid);
    return leave ? { ...advertised, stop: async () => leave() } : advertised;
  } catch (err) {
    leave?.();
    if (err instanceof EmbeddedServerError) throw err;
    throw new EmbeddedServerError(`${PREFIX} could not start FerretDB: ${firstLine(err)}`, { cause: err });
  }
}
