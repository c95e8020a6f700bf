import { describe, expect, it } from 'vitest';
import {
  cancelContainer,
  createClient,
  defineContainer,
  getContainerStatus,
  MongoStore,
  retryTasks,
  Runner,
} from '../src/index.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

describe('container status is derived from its tasks', () => {
  it('a retry that lands after the runner finished the container revives it (a stale finish never sticks)', async () => {
    let fail = true;
    const container = defineContainer('late-retry').task('x', { retries: 0 }, async () => {
      if (fail) throw new Error('first run fails');
      return 'ok';
    });
    const store = await MongoStore.create(db().connection);
    expect((await (await Runner.create({ store, container, ...fast })).run()).status).toBe('failed');
    // The retry lands between a runner's last read and its finishContainer:
    await retryTasks(store, 'late-retry');
    await store.finishContainer('late-retry', 'failed');
    fail = false;
    expect((await (await Runner.create({ store, container, ...fast })).run()).status).toBe('succeeded');
    expect((await getContainerStatus('late-retry', { store })).status).toBe('succeeded');
    expect((await store.getContainer('late-retry'))!.status).toBe('succeeded');
  });

  it('a runner SIGKILLed right after the last success still reads succeeded', async () => {
    const child = spawnTsChild('test/fixtures/state-child.ts', [], {
      MONGODB_URI: db().uriWithDb,
      CONTAINER: 'killed-at-end',
      SCENARIO: 'last-success',
    });
    await child.waitForLine('succeeded', 30_000);
    expect((await child.waitForExit(10_000)).signal).toBe('SIGKILL');
    expect(child.lines.some((l) => l.startsWith('run returned'))).toBe(false);
    const report = await getContainerStatus('killed-at-end', { connection: db().connection });
    expect(report.counts.succeeded).toBe(1);
    expect(report.status).toBe('succeeded');
    expect(report.finishedAt).not.toBeNull();
  });

  it('a cancel is final even when no runner is alive', async () => {
    const child = spawnTsChild('test/fixtures/state-child.ts', [], {
      MONGODB_URI: db().uriWithDb,
      CONTAINER: 'cancel-dead',
      SCENARIO: 'hold',
    });
    await child.waitForLine('started long', 30_000);
    await child.kill('SIGKILL');
    const store = await MongoStore.create(db().connection);
    expect(await cancelContainer(store, 'cancel-dead')).toBe(true);
    const report = await getContainerStatus('cancel-dead', { store });
    expect(report.status).toBe('cancelled');
    expect(report.cancelRequested).toBe(true);
    // And it stays so: cancelling again says it had already finished.
    expect(await cancelContainer(store, 'cancel-dead')).toBe(false);
  });

  it('a container whose declared tasks are not all present is never finished', async () => {
    const store = await MongoStore.create(db().connection);
    // The creator died after writing the container record, before its tasks.
    await store.createContainer({
      name: 'half-made',
      failFast: false,
      definition: [
        { name: 'a', dependsOn: [] },
        { name: 'b', dependsOn: ['a'] },
      ],
    });
    expect((await getContainerStatus('half-made', { store })).status).toBe('running');
    // The 0.0.1 view agrees: not complete while declared tasks are missing.
    const legacy = await createClient({ connection: db().connection }).getTaskContainer('half-made');
    expect(legacy!.isComplete()).toBe(false);
    const runner = await Runner.create({ store, container: 'half-made', ...fast });
    const run = runner.run();
    await new Promise((r) => setTimeout(r, 400));
    await runner.stop();
    expect((await run).status).toBe('stopped');
    expect((await store.getContainer('half-made'))!.status).toBe('running');

    // The tasks arrive later and one fails: the container says failed.
    const failing = defineContainer('half-made')
      .task('a', { retries: 0 }, async () => {
        throw new Error('a fails');
      })
      .task('b', { dependsOn: ['a'] }, async () => 'b');
    expect((await (await Runner.create({ store, container: failing, ...fast })).run()).status).toBe('failed');
    expect((await getContainerStatus('half-made', { store })).status).toBe('failed');
  });
});

describe('a cancel stays final', () => {
  it('a 0.0.1 progress update of a task still running does not reopen a cancelled container', async () => {
    const store = await MongoStore.create(db().connection);
    const api = createClient({ connection: db().connection });
    const c = await api.getOrCreateTaskContainer('cancel-then-update');
    await c.addTask('t1');
    await c.addTask('t2');
    const leased = await c.getNextTask();
    expect(leased!.name()).toBe('t1');
    expect(await cancelContainer(store, 'cancel-then-update')).toBe(true);
    await c.updateTask('t1', { percentageComplete: 40, statusText: 'still going' });
    expect((await getContainerStatus('cancel-then-update', { store })).status).toBe('cancelled');
    // Giving it work again reopens it.
    await c.updateTask('t2', { hasFailed: false });
    expect((await getContainerStatus('cancel-then-update', { store })).status).toBe('running');
  });
});
