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

/** Records `server` in its data folder until it stops (or this process exits). */
async function advertise(started: EmbeddedMongo, dataDir: string | undefined): Promise<EmbeddedMongo> {
  const server = { ...started, dataDir };
  if (!dataDir) return server;
  const file = path.join(dataDir, STATE_FILE);
  const state: ServerState = { pid: process.pid, uri: server.uri, kind: server.kind };
  await fsp.writeFile(file, `${JSON.stringify(state)}\n`);
  const forget = () => {
    try {
      const now = JSON.parse(fs.readFileSync(file, 'utf8')) as ServerState;
      if (now.pid === process.pid) fs.rmSync(file, { force: true });
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
  if (dataDir) {
    await fsp.mkdir(dataDir, { recursive: true });
    const shared = await runningOn(dataDir);
    if (shared) {
      o.log(`${PREFIX} using the ${shared.kind} server that process ${shared.pid} runs on ${dataDir}: ${shared.uri}`);
      return { uri: shared.uri, kind: shared.kind, dataDir, stop: async () => {} };
    }
  }

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

  try {
    return await advertise(
      await startFerretDb({ dataDir: dataDir && path.join(dataDir, 'ferretdb'), port: o.port, log: o.log }),
      dataDir,
    );
  } catch (err) {
    if (err instanceof EmbeddedServerError) throw err;
    throw new EmbeddedServerError(`${PREFIX} could not start FerretDB: ${firstLine(err)}`, { cause: err });
  }
}
