/**
 * `npm run test:server [-- --data <dir>]`: starts the same MongoDB-compatible
 * server the tests use and keeps it running until Ctrl-C, printing
 * `MONGODB_URI=...` for use in another shell (examples, manual runs).
 * With `--data <dir>` the data is kept in <dir> across restarts.
 */
import { startMongoServer } from '../../tools/mongo-server.js';
import { serveUntilSignal } from '../../tools/serve-until-signal.js';

const i = process.argv.indexOf('--data');
const dataDir = i >= 0 ? process.argv[i + 1] : undefined;
if (i >= 0 && !dataDir) {
  console.error('usage: tsx test/support/server-cli.ts [--data <dir>]');
  process.exit(2);
}

const server = await startMongoServer({ dataDir, persistent: Boolean(dataDir) });
console.log(`MONGODB_URI=${server.uri}`);
console.error(`(${server.kind}${dataDir ? `, data in ${dataDir}` : ''}; Ctrl-C to stop)`);

serveUntilSignal(server);
