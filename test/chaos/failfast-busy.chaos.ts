/**
 * Fail-fast with two busy runners (issue 12 §C, Deliver 5): R2 runs the
 * long task `s0` and holds `bad` as pending; R1 runs `bad`, which fails for
 * good, and the long `s1`. Both must stop their long tasks within two
 * `pollMs` (with a wide margin here), with the cause. Then `retryTasks`
 * resets `bad` and what its failure stopped, and runner C finishes.
 */
import { expect, it } from 'vitest';
import { MongoStore, retryTasks } from '../../src/index.js';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();
const POLL_MS = 200;

it('fail-fast with two busy runners', async () => {
  const shape = 'failfast';
  const s = scenario('failfast-busy', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'ff', SHAPE: shape, FAIL_FIRST: 'bad', INC: '1',
    SLOW_STEPS: '600', STEP_MS: '100', STEPS: '3', LEASE_MS: '20000', HEARTBEAT_MS: '2000', POLL_MS: String(POLL_MS),
  });
  try {
    const r2 = spawnRunner(s, 'R2', { CONCURRENCY: '1' });
    await r2.waitForLine(/^started s0 /, 60_000);
    const r1 = spawnRunner(s, 'R1', { CONCURRENCY: '2' });
    const [r1End, r2End] = await Promise.all([settle(s, r1, 90_000), settle(s, r2, 90_000)]);
    const store = await MongoStore.create(db().connection);
    const stopped = (await store.loadSnapshot('ff'))!;
    const at = (task: string) => stopped.tasks.find((t) => t.record.name === task)!.state;
    const delayMs = Math.max(at('s0').endedAt!.getTime(), at('s1').endedAt!.getTime()) - at('bad').endedAt!.getTime();
    expect.soft(at('s0').status).toBe('cancelled');
    expect.soft(at('s0').reason).toBe('container failed: task "bad" failed');
    expect.soft(delayMs).toBeLessThan(2 * POLL_MS + 10_000);
    const reset = await retryTasks(store, 'ff', 'bad');
    const cEnd = await settle(s, spawnRunner(s, 'C', { SLOW_STEPS: '3' }), 60_000);
    report(s, await readContainer(db().uriWithDb, 'ff'), {
      shape,
      extra: { stopDelayMs: delayMs, reset: reset.sort().join('+'), runs: JSON.stringify([r1End, r2End, cEnd]) },
    });
  } finally {
    await killAll(s);
  }
});
