/**
 * `npm run db [-- --port 27018 --data .pts-data --db pts_example]`: starts the
 * embedded server (persistent-task-status/embedded) on the data folder the
 * examples use, on a fixed port, prints the MONGODB_URI for `pts` and your
 * own code, and runs until Ctrl-C. Use it to look at an example's data after
 * the example ended. `PTS_DB_PORT` also sets the port.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_DATA_DIR, DEFAULT_DB_PORT, startEmbeddedMongo } from '../src/embedded/index.js';
import { serveUntilSignal } from './serve-until-signal.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PTS_DB_PORT || String(DEFAULT_DB_PORT) },
    data: { type: 'string', default: DEFAULT_DATA_DIR },
    db: { type: 'string', default: 'pts_example' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`db: --port must be a TCP port number, got ${values.port}`);
  process.exit(2);
}
if (process.env.MONGODB_URI?.trim()) {
  console.log('MONGODB_URI is set: pts and the examples use that server; nothing to start.');
  process.exit(0);
}

let server;
try {
  server = await startEmbeddedMongo({ dataDir: values.data!, port, useMongodbUri: false });
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
const uri = new URL(server.uri);
uri.pathname = `/${values.db}`;
console.log(`MONGODB_URI=${uri.href}`);
console.log(`  e.g.  MONGODB_URI=${uri.href} npm run pts -- list`);
console.error(`(${server.kind}, data in ${server.dataDir}; Ctrl-C to stop)`);

serveUntilSignal(server);
