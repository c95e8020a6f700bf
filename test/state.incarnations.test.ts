import { describe, expect, it } from 'vitest';
import { defineContainer, getContainerStatus, MongoStore, Runner } from '../src/index.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

describe('a container deleted and created again is a new incarnation', () => {
  it("late writes of the old run land nowhere visible: no foreign output, no stale skip", async () => {
    // Two stores: two processes, each with its own view.
    const oldProcess = await MongoStore.create(db().connection);
    const newProcess = await MongoStore.create(db().connection);
    const define = (value: string) =>
      defineContainer('reborn')
        .task('produce', async () => value)
        .task('consume', { dependsOn: ['produce'] }, async (ctx) => ctx.deps.produce);
    await Runner.create({ store: oldProcess, container: define('old'), ...fast });
    const claim = (await oldProcess.claimTask({ container: 'reborn', task: 'produce', expectedToken: 0, claim: { runnerId: 'old', attempt: 1, leaseMs: 60_000, checkpoint: null } }))!;
    expect(claim).not.toBeNull();

    expect(await newProcess.deleteContainer('reborn')).toBe(true);
    expect(await newProcess.getContainer('reborn')).toBeNull();
    const runner = await Runner.create({ store: newProcess, container: define('new'), ...fast });

    // The old run's attempt ends late, and its runner settles from what it read before.
    await oldProcess.finishAttempt(claim, { kind: 'succeeded', output: 'old' }).catch(() => undefined);
    await oldProcess.settleTask('reborn', 'consume', 0, { kind: 'skipped', reason: 'stale' });

    expect((await runner.run()).status).toBe('succeeded');
    const snap = (await newProcess.loadSnapshot('reborn'))!;
    expect(stateOf(snap, 'produce').output).toBe('new');
    expect(stateOf(snap, 'produce').attempt).toBe(1);
    expect(stateOf(snap, 'consume').output).toBe('new');
    expect(snap.container.incarnation).not.toBe(claim.incarnation);
  });

  it('a runner process mid-attempt during delete and re-create never touches the new run', async () => {
    const child = spawnTsChild('test/fixtures/state-child.ts', [], {
      MONGODB_URI: db().uriWithDb,
      CONTAINER: 'reborn-live',
      SCENARIO: 'hold',
    });
    await child.waitForLine('started long', 30_000);
    const store = await MongoStore.create(db().connection);
    let runs = 0;
    const container = defineContainer('reborn-live').task('long', async () => {
      runs += 1;
      await new Promise((r) => setTimeout(r, 500));
      return 'fresh';
    });
    // Frozen while the container is deleted and created again: it polls every
    // 50 ms and must meet the new incarnation, not the moment in between.
    child.child.kill('SIGSTOP');
    expect(await store.deleteContainer('reborn-live')).toBe(true);
    const runner = await Runner.create({ store, container, ...fast, runnerId: 'new-runner' });
    child.child.kill('SIGCONT');
    expect((await runner.run()).status).toBe('succeeded');
    // The old runner noticed and stopped without recording anything.
    await child.waitForLine(/^run failed NotFoundError: .*deleted and created again/, 15_000);
    await child.waitForExit(15_000);
    const report = await getContainerStatus('reborn-live', { store });
    expect(report.status).toBe('succeeded');
    const long = stateOf((await store.loadSnapshot('reborn-live'))!, 'long');
    expect(long.attempt).toBe(1);
    expect(long.runnerId).toBe('new-runner');
    expect(long.output).toBe('fresh');
    expect(runs).toBe(1);
  });
});

describe('containers stored before incarnations existed', () => {
  it('are read and run with their old keys', async () => {
    const store = await MongoStore.create(db().connection);
    const raw = db().connection.db!;
    const now = new Date();
    const options = (await import('../src/definition/options.js')).resolveTaskOptions('a');
    await raw.collection('pts_containers').insertOne({
      _id: 'legacy' as never,
      status: 'running',
      failFast: true,
      definition: null,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      cancelRequestedAt: null,
    });
    await raw.collection('pts_tasks').insertMany([
      { _id: JSON.stringify(['legacy', 'a']) as never, container: 'legacy', name: 'a', dependsOn: [], handler: 'h', input: 1, options, dynamic: false, addedBy: null, order: 1, createdAt: now },
      { _id: JSON.stringify(['legacy', 'b']) as never, container: 'legacy', name: 'b', dependsOn: ['a'], handler: 'h', input: 2, options, dynamic: false, addedBy: null, order: 2, createdAt: now },
    ]);
    await raw.collection('pts_transitions').insertMany([
      { _id: JSON.stringify(['legacy', 'a', 1]) as never, container: 'legacy', task: 'a', token: 1, kind: 'claimed', at: now, runnerId: 'old', attempt: 1, leaseUntil: now },
      { _id: JSON.stringify(['legacy', 'a', 2]) as never, container: 'legacy', task: 'a', token: 2, kind: 'succeeded', at: now, output: 'A' },
    ]);
    const before = (await store.loadSnapshot('legacy'))!;
    expect(before.container.incarnation).toBe('');
    expect(stateOf(before, 'a').status).toBe('succeeded');
    const runner = await Runner.create({ store, container: 'legacy', handlers: { h: async (ctx) => `${String(ctx.deps.a)}+${String(ctx.input)}` }, ...fast });
    expect((await runner.run()).status).toBe('succeeded');
    expect(stateOf((await store.loadSnapshot('legacy'))!, 'b').output).toBe('A+2');
    expect(await raw.collection('pts_transitions').countDocuments({ _id: JSON.stringify(['legacy', 'b', 2]) as never })).toBe(1);
    expect(await store.deleteContainer('legacy')).toBe(true);
    expect(await raw.collection('pts_tasks').countDocuments({ container: 'legacy' })).toBe(0);
  });
});
