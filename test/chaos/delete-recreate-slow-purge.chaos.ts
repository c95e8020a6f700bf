/**
 * Delete and re-create under a slow purge (issue 12 §B): runner A
 * (incarnation 1) finishes the container; the test deletes it on its own
 * connection and holds the purge's task step, then its log step, for 3 s
 * each; meanwhile runner B re-creates the container (incarnation 2) and
 * runs it to its end. Once the purge is let go, runner C (incarnation 2)
 * must find everything done: no task lost, no work run again.
 */
import mongoose from 'mongoose';
import { it } from 'vitest';
import { MongoStore } from '../../src/index.js';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

/** Holds each `deleteMany` of the model for `ms` before sending it. */
function slowDeleteMany(model: Record<string, unknown>, ms: number): void {
  const real = (model.deleteMany as (...a: unknown[]) => { exec(): Promise<unknown> }).bind(model);
  model.deleteMany = (...args: unknown[]) => {
    const query = real(...args);
    return { exec: async () => (await sleep(ms), query.exec()) };
  };
}

it('delete and re-create under a slow purge', async () => {
  const shape = 'slow:3';
  const s = scenario('delete-recreate-slow-purge', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'phoenix', SHAPE: shape, SLOW_STEPS: '5', STEP_MS: '50', STEPS: '2',
  });
  const other = await mongoose.createConnection(db().uriWithDb).asPromise();
  try {
    const a = spawnRunner(s, 'A', { INC: '1' });
    const aEnd = await settle(s, a, 60_000);
    const deleter = await MongoStore.create(other);
    const m = (deleter as unknown as { m: Record<string, Record<string, unknown>> }).m;
    slowDeleteMany(m.tasks!, 3_000);
    slowDeleteMany(m.transitions!, 3_000);
    const deleting = deleter.deleteContainer('phoenix');
    await sleep(300); // the tombstone is written, the purge held
    const bEnd = await settle(s, spawnRunner(s, 'B', { INC: '2' }), 60_000);
    const deleted = await deleting;
    const cEnd = await settle(s, spawnRunner(s, 'C', { INC: '2' }), 60_000);
    report(s, await readContainer(db().uriWithDb, 'phoenix'), {
      shape,
      inc: '2',
      extra: { deleted: String(deleted), runs: JSON.stringify([aEnd, bEnd, cEnd]) },
    });
  } finally {
    await other.close();
    await killAll(s);
  }
});
