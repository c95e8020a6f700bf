/**
 * A retry racing the container's completion: the last task fails, and while
 * the runner concludes that the container failed, another process calls
 * `retryTasks` on it as soon as the task has failed (it starts asking 0 to
 * 75 ms after the task started, one container per offset, and asks again as
 * long as the task is still running). The retried task must run again and
 * the container must end as its tasks say: succeeded.
 */
import { it } from 'vitest';
import { MongoStore, retryTasks, ValidationError } from '../../src/index.js';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

// 16 containers: one of them meets the window in about 1 trial of 5 on today's engine.
const DELAYS_MS = Array.from({ length: 16 }, (_, i) => i * 5);

it('retry racing the container completion', async () => {
  const shape = 'retry';
  const s = scenario('retry-race', {
    MONGODB_URI: db().uriWithDb, SHAPE: shape, LEASE_MS: '2000', HEARTBEAT_MS: '500', STEPS: '2', STEP_MS: '30', FAIL_FIRST: 'flaky',
  });
  const store = await MongoStore.create(db().connection);
  const parts = [];
  const ends: string[] = [];
  try {
    for (const [i, delay] of DELAYS_MS.entries()) {
      const container = `retry-${i}`;
      const env = { CONTAINER: container, INC: `r${i}` };
      const a = spawnRunner(s, `A${i}`, env);
      await a.waitForLine(/^started flaky /, 60_000);
      await sleep(delay);
      let reset: string[];
      let asked = 0;
      for (const deadline = Date.now() + 30_000; ; ) {
        asked++;
        try {
          reset = await retryTasks(store, container, 'flaky');
          break;
        } catch (e) {
          // Still running: ask again at once. Anything else is the answer.
          if (!(e instanceof ValidationError) || Date.now() > deadline) {
            reset = [`refused: ${(e as Error).message}`];
            break;
          }
        }
      }
      const aEnd = await settle(s, a, 30_000);
      // Whatever A concluded, a later runner must finish the retried task.
      const bEnd = await settle(s, spawnRunner(s, `B${i}`, env), 30_000);
      ends.push(`${delay}ms:asked${asked}:${reset.join('+')}:${aEnd.replace('done ', '')}/${bEnd.replace('done ', '')}`);
      parts.push({ snapshot: await readContainer(db().uriWithDb, container), inc: `r${i}` });
    }
    report(s, parts, { shape, extra: { trials: DELAYS_MS.length, runs: JSON.stringify(ends) } });
  } finally {
    await killAll(s);
  }
});
