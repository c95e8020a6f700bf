/**
 * SIGKILL storm: a 500-task DAG whose runner process is SIGKILLed 32 times at
 * seeded random moments (each time a new process takes over), then a last
 * runner finishes it. No task may start again after its success was
 * recorded, and no two attempts of a task may run at once.
 */
import { it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, killRunner, readContainer, report, scenario, seeded, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

const KILLS = 32;

it('SIGKILL storm: 32 SIGKILLs of the runner in a 500-task DAG', async () => {
  const shape = 'dag:500:50';
  const s = scenario('sigkill-storm', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'storm', SHAPE: shape, INC: '1',
    LEASE_MS: '1000', HEARTBEAT_MS: '250', STEPS: '3', STEP_MS: '40', CONCURRENCY: '6', MAX_RECOVERIES: '1000',
  });
  const random = seeded(8);
  let killed = 0;
  let finishedEarly = 0;
  try {
    for (let i = 0; i < KILLS; i++) {
      const r = spawnRunner(s, `victim-${i}`);
      await r.waitForLine('ready', 60_000);
      // Kill while it claims, runs and writes: 0.15 to 1.05 s into its run.
      await sleep(150 + Math.floor(random() * 900));
      if (r.exitInfo) {
        finishedEarly++;
        break;
      }
      await killRunner(s, r);
      killed++;
    }
    const survivor = spawnRunner(s, 'survivor');
    const end = await settle(s, survivor, 180_000);
    report(s, await readContainer(db().uriWithDb, 'storm'), { shape, extra: { kills: killed, finishedEarly, survivor: JSON.stringify(end) } });
  } finally {
    await killAll(s);
  }
});
