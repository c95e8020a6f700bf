/**
 * A zombie: a runner SIGSTOPped mid-task past its lease while another takes
 * the task over and finishes the container, then SIGCONTed. Its late writes
 * must be fenced off and it must not run anything again.
 */
import { it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { freezeRunner, killAll, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

it('zombie: a runner frozen past its lease, then woken, is fenced off', async () => {
  const shape = 'slow:4';
  const s = scenario('zombie', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'zombie', SHAPE: shape, INC: '1',
    LEASE_MS: '1000', HEARTBEAT_MS: '250', SLOW_STEPS: '30', STEP_MS: '100', STEPS: '2',
  });
  try {
    const a = spawnRunner(s, 'A');
    await a.waitForLine(/^started slow /, 30_000);
    await sleep(400);
    freezeRunner(s, a, true);
    await sleep(2_000); // twice the lease
    const b = spawnRunner(s, 'B');
    const bEnd = await settle(s, b, 60_000);
    freezeRunner(s, a, false);
    const aEnd = await settle(s, a, 20_000);
    report(s, await readContainer(db().uriWithDb, 'zombie'), { shape, extra: { A: JSON.stringify(aEnd), B: JSON.stringify(bEnd) } });
  } finally {
    await killAll(s);
  }
});
