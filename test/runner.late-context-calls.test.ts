/**
 * `ctx.*` never produces an unhandled rejection: a handler that calls
 * `ctx.progress()`, `ctx.checkpoint()` or `ctx.addTasks()` without awaiting,
 * after its attempt ended, must not end the process (Node exits with code 1
 * on an unhandled rejection) and so kill every other task of the runner.
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

it('late ctx calls that are not awaited leave the process and the other tasks alive', async () => {
  const log = sideEffectLog(path.join(makeTempDir(), 'effects.jsonl'));
  const child = spawnTsChild('test/fixtures/loop-child.ts', [], {
    MONGODB_URI: db().uriWithDb,
    SCENARIO: 'late-calls',
    CONTAINER: 'late-calls',
    LOG: log.path,
  });
  await child.waitForLine('late-calls-made', 60_000);
  await child.waitForLine('done succeeded', 60_000);
  expect(await child.waitForExit()).toEqual({ code: 0, signal: null });
  expect(child.stderr).not.toMatch(/Unhandled|ERR_UNHANDLED_REJECTION/);

  const end = await snapshotOf(db().connection, 'late-calls');
  expect(stateOf(end, 'slow').status).toBe('succeeded');
  expect(stateOf(end, 'quick')).toMatchObject({ status: 'succeeded', output: 'quick-done', progress: 1 });
  // The late checkpoint and the late task were refused, not written.
  expect(stateOf(end, 'quick').checkpoint).toBeUndefined();
  expect(end.tasks.map((t) => t.record.name).sort()).toEqual(['quick', 'slow']);
}, 90_000);
