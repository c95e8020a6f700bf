/** graphile-worker on PostgreSQL, library defaults except `concurrency` (LISTEN/NOTIFY, polling every 2 s). */
import { Logger, makeWorkerUtils, run, type Runner } from 'graphile-worker';
import pg from 'pg';
import { versionOf, type Peer } from './peer.js';

const quiet = new Logger(() => (level, message) => {
  if (level === 'error') console.error(`graphile-worker: ${message}`);
});

export const graphileWorker: Peer = {
  name: `graphile-worker ${await versionOf('graphile-worker')}`,
  store: 'postgres',
  async enqueue(url, queue, n) {
    const utils = await makeWorkerUtils({ connectionString: url, logger: quiet });
    await utils.migrate();
    await utils.addJobs(Array.from({ length: n }, (_, i) => ({ identifier: queue, payload: { i } })));
    await utils.release();
  },
  async prepare(url, queue, concurrency) {
    const pgPool = new pg.Pool({ connectionString: url, max: concurrency + 2 });
    // graphile-worker asks for error handlers on the pool and on each client.
    pgPool.on('error', (e) => console.error(`graphile-worker pool: ${e.message}`));
    pgPool.on('connect', (client) => client.on('error', (e) => console.error(`graphile-worker client: ${e.message}`)));
    await pgPool.query('select 1');
    let runner: Runner | null = null;
    return {
      async start(handler) {
        runner = await run({ pgPool, concurrency, noHandleSignals: true, logger: quiet, taskList: { [queue]: () => handler() } });
      },
      async stop() {
        await runner?.stop();
        await pgPool.end();
      },
    };
  },
};
