/**
 * `retryTasks` cut between its writes (issue 12 §C, Deliver 4): the last
 * task fails; a process calls `retryTasks` and is SIGKILLed right after its
 * N-th write was acknowledged (test/fixtures/retry-cut-child.ts), one
 * container per N. Runner A may still be running when it happens; runner B
 * comes later. The retried task must run again and every container end as
 * its tasks say: succeeded.
 */
import { expect, it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach, spawnTsChild } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

/** A retry of one task writes its intent, the reset, the revision after it, and its end: cut after each but the last. */
const CUTS = [1, 2, 3];

it('retryTasks cut between its writes', async () => {
  const shape = 'retry';
  const s = scenario('retry-cut', {
    MONGODB_URI: db().uriWithDb, SHAPE: shape, LEASE_MS: '2000', HEARTBEAT_MS: '500', STEPS: '2', STEP_MS: '30', FAIL_FIRST: 'flaky',
  });
  const parts = [];
  const ends: string[] = [];
  try {
    for (const cut of CUTS) {
      const container = `cut-${cut}`;
      const env = { CONTAINER: container, INC: `c${cut}` };
      const a = spawnRunner(s, `A${cut}`, env);
      await a.waitForLine('failed flaky', 60_000);
      const child = spawnTsChild('test/fixtures/retry-cut-child.ts', [], {
        MONGODB_URI: db().uriWithDb, CONTAINER: container, TASK: 'flaky', CUT_AFTER_WRITES: String(cut),
      });
      const exit = await child.waitForExit(60_000);
      expect.soft(exit.signal).toBe('SIGKILL');
      const aEnd = await settle(s, a, 30_000);
      const bEnd = await settle(s, spawnRunner(s, `B${cut}`, env), 30_000);
      ends.push(`cut${cut}:${aEnd.replace('done ', '')}/${bEnd.replace('done ', '')}`);
      parts.push({ snapshot: await readContainer(db().uriWithDb, container), inc: `c${cut}` });
    }
    report(s, parts, { shape, extra: { runs: JSON.stringify(ends) } });
  } finally {
    await killAll(s);
  }
});
