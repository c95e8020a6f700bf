/**
 * pg-boss on PostgreSQL. pg-boss 10 (the last major that runs on Node 20;
 * 11 and later need Node 22) has no concurrency option: a process calls
 * `work()` once per slot, each fetching one job at a time (its README's
 * advice). Each such worker waits out `pollingIntervalSeconds` from the start
 * of one fetch to the next even when it found a job (src/worker.js), so a
 * slot takes at most one job per interval: the bench sets the smallest
 * interval pg-boss 10 accepts, 0.5 s (default 2 s).
 */
import PgBoss from 'pg-boss';
import { versionOf, type Peer } from './peer.js';

/** The smallest `pollingIntervalSeconds` pg-boss 10 accepts. */
const POLLING_INTERVAL_S = 0.5;

export const pgBoss: Peer = {
  name: `pg-boss ${await versionOf('pg-boss')}`,
  store: 'postgres',
  async enqueue(url, queue, n) {
    // A client only: no maintenance or cron supervision from this process.
    const boss = new PgBoss({ connectionString: url, max: 2, supervise: false, schedule: false });
    boss.on('error', (e) => console.error(`pg-boss: ${e.message}`));
    await boss.start();
    await boss.createQueue(queue);
    await boss.insert(Array.from({ length: n }, (_, i) => ({ name: queue, data: { i } })));
    await boss.stop({ graceful: false, wait: true });
  },
  async prepare(url, queue, concurrency) {
    const boss = new PgBoss({ connectionString: url, max: concurrency + 2 });
    boss.on('error', (e) => console.error(`pg-boss: ${e.message}`));
    await boss.start();
    return {
      async start(handler) {
        for (let i = 0; i < concurrency; i++) await boss.work(queue, { batchSize: 1, pollingIntervalSeconds: POLLING_INTERVAL_S }, () => handler());
      },
      async stop() {
        await boss.stop({ graceful: false, wait: true });
      },
    };
  },
};
