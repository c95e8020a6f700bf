/**
 * Clock skew: runner B (true clock) runs a long task; runner A, whose wall
 * clock is 60 s ahead (test/fixtures/chaos-clock.ts), joins. A healthy lease
 * must not look expired to A: never two executions at once.
 */
import { it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

it('clock skew: a runner whose clock is 60 s ahead does not take over healthy tasks', async () => {
  const shape = 'slow:4';
  const s = scenario('clock-skew', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'skew', SHAPE: shape, INC: '1',
    LEASE_MS: '2000', HEARTBEAT_MS: '500', SLOW_STEPS: '50', STEP_MS: '100', STEPS: '2',
  });
  try {
    const b = spawnRunner(s, 'B');
    await b.waitForLine(/^started slow /, 30_000);
    await sleep(200);
    const a = spawnRunner(s, 'A-skewed', { CHAOS_CLOCK_SKEW_MS: '60000' });
    const [aEnd, bEnd] = await Promise.all([settle(s, a, 60_000), settle(s, b, 60_000)]);
    report(s, await readContainer(db().uriWithDb, 'skew'), { shape, extra: { A: JSON.stringify(aEnd), B: JSON.stringify(bEnd) } });
  } finally {
    await killAll(s);
  }
});
