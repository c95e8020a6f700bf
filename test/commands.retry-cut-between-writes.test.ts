/**
 * Issue 12 §C / Deliver 4: `retryTasks` cut off between any two of its
 * writes (its process SIGKILLed right after a write was acknowledged,
 * test/fixtures/retry-cut-child.ts) leaves a container that the live
 * runner, a status read, the command repeated, or a new runner repairs.
 */
import { describe, expect, it } from 'vitest';
import { defineContainer, getContainerStatus, MongoStore, retryTasks, Runner } from '../src/index.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { sleep, stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

/** A retry of one task writes: the intent, the reset, the revision after it, the end. Cuts after each but the last. */
const CUTS = [1, 2, 3];

async function cutRetry(container: string, cut: number): Promise<void> {
  const child = spawnTsChild('test/fixtures/retry-cut-child.ts', [], {
    MONGODB_URI: db().uriWithDb,
    CONTAINER: container,
    TASK: 'a',
    CUT_AFTER_WRITES: String(cut),
  });
  const exit = await child.waitForExit(60_000);
  expect(exit.signal, child.lines.join('\n')).toBe('SIGKILL');
}

function define(name: string, runs: string[], slowMs: number) {
  return defineContainer(name, { failFast: false })
    .task('a', { retries: 0 }, async (ctx) => {
      runs.push(`a#${ctx.attempt}`);
      if (ctx.attempt === 1) throw new Error('a fails once');
      return 'a';
    })
    .task('slow', async (ctx) => {
      await sleep(slowMs, ctx.signal);
      return 'slow';
    });
}

describe('retryTasks cut between two of its writes', () => {
  for (const cut of CUTS) {
    it(`after write ${cut}: the runner still running the container picks the retried task up`, async () => {
      const name = `live-${cut}`;
      const runs: string[] = [];
      const store = await MongoStore.create(db().connection);
      // The slow task keeps the runner alive until the cut retry is over.
      const runner = await Runner.create({ store, container: define(name, runs, 75_000), ...fast, stopTimeoutMs: 100 });
      const failed = new Promise<void>((r) => runner.on('task:failed', () => r()));
      const run = runner.run();
      await failed;
      await cutRetry(name, cut);
      // Let the slow task end soon: what matters is what the runner does with `a`.
      // A cut right after a write of the container document leaves its update
      // gate held (on FerretDB v1, see update-gate.ts): the runner's next write
      // of that document waits out the gate's lease (15 s) first.
      for (let i = 0; i < 2400 && !runs.includes('a#2'); i++) await sleep(25);
      await runner.stop();
      await run;
      expect(runs).toEqual(['a#1', 'a#2']);
      const snap = (await store.loadSnapshot(name))!;
      expect(stateOf(snap, 'a').status).toBe('succeeded');
      expect(snap.container.retry ?? null).toBeNull();
    }, 150_000);

    it(`after write ${cut}: with no runner left, a status read shows the retry and the command repeated finishes it`, async () => {
      const name = `idle-${cut}`;
      const runs: string[] = [];
      const store = await MongoStore.create(db().connection);
      expect((await (await Runner.create({ store, container: define(name, runs, 10), ...fast })).run()).status).toBe('failed');
      await cutRetry(name, cut);
      const report = await getContainerStatus(name, { store });
      expect(report.status).toBe('running');
      expect(report.tasks.find((t) => t.name === 'a')!.status).toBe('pending');
      expect(await retryTasks(store, name, 'a')).toEqual(['a']);
      const head = (await store.readContainerHead(name))!;
      expect(head.record.retry ?? null).toBeNull();
      expect(head.record.status).toBe('running');
      expect((await (await Runner.create({ store, container: define(name, runs, 10), ...fast })).run()).status).toBe('succeeded');
      expect(runs).toEqual(['a#1', 'a#2']);
    }, 90_000);
  }
});
