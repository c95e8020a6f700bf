/**
 * `persistent-task-status/embedded`: a MongoDB-compatible server for your own
 * code, examples and local runs, when you have no MongoDB at hand.
 *
 *   import { startEmbeddedMongo } from 'persistent-task-status/embedded';
 *   const server = await startEmbeddedMongo({ dataDir: '.pts-data' });
 *   const connection = await mongoose.createConnection(server.uri, { dbName: 'jobs' }).asPromise();
 *   // ... later: await server.stop();
 *
 * Chosen in this order:
 *   1. `MONGODB_URI`, when set (nothing is started; turn off with `useMongodbUri: false`).
 *   2. A server that another process (e.g. `npm run db`) already runs on the same `dataDir`.
 *   3. A real mongod via mongodb-memory-server (optional peer dependency; it may
 *      download mongod once). Skipped, with a one-line reason, when it is not
 *      installed or the download host cannot be reached.
 *   4. FerretDB v1 over SQLite, built once from the package's `ferretdb/` Go
 *      sources (needs the Go toolchain and the Go module proxy).
 *
 * Data stays in `dataDir` (`mongod/` or `ferretdb/` inside it), so a second run
 * resumes where the first stopped; a folder that already holds FerretDB data
 * keeps using FerretDB.
 */
import path from 'node:path';
import { defaultLog } from './shared.js';
import { startServer } from './server.js';
import type { EmbeddedMongo } from './types.js';

export { EmbeddedServerError } from './shared.js';
export type { EmbeddedMongo, EmbeddedMongoKind } from './types.js';

/** The port `npm run db` listens on unless told otherwise. */
export const DEFAULT_DB_PORT = 27018;
/** The data folder the examples and `npm run db` share, relative to the working directory. */
export const DEFAULT_DATA_DIR = '.pts-data';

/** Options of {@link startEmbeddedMongo}. */
export interface StartEmbeddedMongoOptions {
  /** Folder for the server's data, created if missing; kept after `stop()`. */
  dataDir: string;
  /** TCP port on 127.0.0.1. @defaultValue a free port */
  port?: number;
  /** Progress lines (which server, why a fallback). @defaultValue writes to stderr */
  log?: (line: string) => void;
  /** Use `MONGODB_URI` when it is set, starting nothing. @defaultValue true */
  useMongodbUri?: boolean;
  /**
   * Let mongodb-memory-server download a mongod (about 100 MB, once) when none
   * is at hand. @defaultValue true, unless the environment sets `PTS_MONGOMS_DOWNLOAD=0`
   */
  download?: boolean;
}

/**
 * Starts a MongoDB-compatible server whose data stays in `dataDir`; see the
 * module comment for which one. Stop it with `stop()`; it also dies with this
 * process.
 * @returns `{ uri, kind, dataDir, stop }`; `uri` names no database: pick one with mongoose's `dbName` option.
 * @throws EmbeddedServerError when no server can be had; its message says what to install (mongodb-memory-server or Go) or to set `MONGODB_URI`.
 */
export async function startEmbeddedMongo(options: StartEmbeddedMongoOptions): Promise<EmbeddedMongo> {
  if (typeof options?.dataDir !== 'string' || !options.dataDir.trim()) {
    throw new TypeError('startEmbeddedMongo: `dataDir` (a folder for the data) is required');
  }
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port > 0 && options.port < 65536)) {
    throw new TypeError(`startEmbeddedMongo: \`port\` must be an integer from 1 to 65535, got ${String(options.port)}`);
  }
  return startServer({
    dataDir: path.resolve(options.dataDir),
    port: options.port,
    log: options.log ?? defaultLog,
    useMongodbUri: options.useMongodbUri ?? true,
    allowDownload: options.download ?? process.env.PTS_MONGOMS_DOWNLOAD !== '0',
  });
}
