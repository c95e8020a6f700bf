/**
 * The test suite's (and benchmarks') way to get a server; a thin layer over
 * the package's embedded server (src/embedded/, shipped as
 * `persistent-task-status/embedded`).
 *
 * Choice order for tests:
 *   1. `MONGODB_URI` is set: use it as is (nothing is started).
 *   2. A real mongod via mongodb-memory-server, but only when a mongod binary
 *      is already at hand (`MONGOMS_SYSTEM_BINARY`, `mongod` on PATH, or its
 *      cache) or `PTS_TRY_MONGOMS_DOWNLOAD=1` lets it download one.
 *   3. FerretDB v1 over SQLite, built from ferretdb/ with Go on first use and
 *      cached in .cache/.
 */
import { startServer } from '../src/embedded/server.js';
import { defaultLog, EmbeddedServerError } from '../src/embedded/shared.js';
import type { EmbeddedMongo, EmbeddedMongoKind } from '../src/embedded/types.js';

export { ensureFerretDbBinary, ferretDbBinaryPath, FERRETDB_VERSION } from '../src/embedded/ferretdb-build.js';
export { getFreePort } from '../src/embedded/shared.js';

export type MongoServerKind = EmbeddedMongoKind;
export type MongoServer = EmbeddedMongo;

export interface StartMongoServerOptions {
  /** Directory for server data. Required when `persistent` is true. */
  dataDir?: string;
  /** Keep data in `dataDir` across restarts; otherwise a temporary directory removed by `stop()`. */
  persistent?: boolean;
  /** Progress lines; defaults to writing to stderr. */
  log?: (line: string) => void;
}

export async function startMongoServer(opts: StartMongoServerOptions = {}): Promise<MongoServer> {
  const persistent = opts.persistent ?? false;
  if (persistent && !opts.dataDir) throw new EmbeddedServerError('startMongoServer({ persistent: true }) needs a dataDir');
  return startServer({
    dataDir: persistent ? opts.dataDir : undefined,
    port: undefined,
    log: opts.log ?? defaultLog,
    useMongodbUri: true,
    allowDownload: process.env.PTS_TRY_MONGOMS_DOWNLOAD === '1',
  });
}
