import { describe, expect, it } from 'vitest';
import { defineContainer, getContainerStatus, MongoStore, retryTasks, Runner } from '../src/index.js';
import { resolveTaskOptions } from '../src/definition/options.js';
import { databasePerFile } from './support/database.js';
import { sleep, stateOf } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

describe('skips follow their causes', () => {
  it('retryTasks(x) after a fail-fast stop also resets what x cancelled or skipped', async () => {
    let fail = true;
    const store = await MongoStore.create(db().connection);
    const container = defineContainer('ff-retry', { failFast: true })
      .task('x', { retries: 0 }, async () => {
        await sleep(100);
        if (fail) throw new Error('x fails');
        return 'x';
      })
      .task('after-x', { dependsOn: ['x'] }, async () => 'after-x')
      .task('slow', async (ctx) => {
        await sleep(fail ? 5_000 : 10, ctx.signal);
        return 'slow';
      })
      .task('after-slow', { dependsOn: ['slow'] }, async () => 'after-slow');
    expect((await (await Runner.create({ store, container, ...fast, concurrency: 2 })).run()).status).toBe('failed');
    const before = (await store.loadSnapshot('ff-retry'))!;
    expect(stateOf(before, 'slow').status).toBe('cancelled');
    expect(stateOf(before, 'after-slow').status).toBe('skipped');

    fail = false;
    expect((await retryTasks(store, 'ff-retry', 'x')).sort()).toEqual(['after-slow', 'after-x', 'slow', 'x']);
    expect((await (await Runner.create({ store, container, ...fast })).run()).status).toBe('succeeded');
    const after = await getContainerStatus('ff-retry', { store });
    expect(after.counts.succeeded).toBe(4);
  });

  it('a skip decided from a stale read is undone once its dependency moves on', async () => {
    const store = await MongoStore.create(db().connection);
    const container = defineContainer('stale-skip')
      .task('a', async () => 'a')
      .task('b', { dependsOn: ['a'] }, async () => 'b');
    await Runner.create({ store, container, ...fast });
    // "a" failed once (recorded as a runner would).
    const claim = (await store.claimTask({ container: 'stale-skip', task: 'a', expectedToken: 0, claim: { runnerId: 'r', attempt: 1, leaseMs: 10_000, checkpoint: null } }))!;
    const error = { name: 'Error', message: 'a failed', code: null, stack: null, attempt: 1, at: new Date() };
    await store.finishAttempt(claim, { kind: 'failed', error, retryAt: null });
    expect(await retryTasks(store, 'stale-skip', 'a')).toEqual(['a']);
    // A runner that read "a" as failed before the retry lands its skip of "b" now.
    const ok = await store.settleTask('stale-skip', 'b', 0, {
      kind: 'skipped',
      reason: 'dependency "a" failed',
      cause: { task: 'a', token: 2 },
    });
    expect(ok).toBe(true);
    const runner = await Runner.create({ store, container, ...fast });
    const run = runner.run();
    const timer = setTimeout(() => void runner.stop(), 5_000);
    expect((await run).status).toBe('succeeded');
    clearTimeout(timer);
    const snap = (await store.loadSnapshot('stale-skip'))!;
    expect(stateOf(snap, 'b').status).toBe('succeeded');
  });

  it('a dependency on a task that no longer exists skips the dependent with a reason', async () => {
    const store = await MongoStore.create(db().connection);
    await store.createContainer({ name: 'dangling', failFast: false, definition: null });
    const options = resolveTaskOptions('b', {});
    // What a deleteTask("a") racing addTask("b", { dependsOn: ["a"] }) leaves behind.
    await store.addTasks('dangling', [
      { name: 'b', dependsOn: ['a'], handler: 'h', input: null, options, dynamic: false, addedBy: null },
    ]);
    const runner = await Runner.create({ store, container: 'dangling', handlers: { h: async () => 'b' }, ...fast });
    const run = runner.run();
    const timer = setTimeout(() => void runner.stop(), 5_000);
    expect((await run).status).toBe('failed');
    clearTimeout(timer);
    const b = stateOf((await store.loadSnapshot('dangling'))!, 'b');
    expect(b.status).toBe('skipped');
    expect(b.reason).toBe('dependency "a" does not exist');
  });
});

describe('deleteTask racing addTask with dependsOn (0.0.1 API)', () => {
  it('never leaves a dependent waiting forever', async () => {
    const { createClient } = await import('../src/index.js');
    const api = createClient({ connection: db().connection });
    const outcomes = new Map<string, number>();
    for (let trial = 0; trial < 8; trial++) {
      const name = `race-${trial}`;
      const c = await api.getOrCreateTaskContainer(name);
      await c.addTask('a', { handler: 'h' });
      const [deleted, added] = await Promise.allSettled([c.deleteTask('a'), c.addTask('b', { dependsOn: ['a'], handler: 'h' })]);
      const store = await MongoStore.create(db().connection);
      if (added.status === 'rejected') {
        // The delete won outright (the add read after it: a server that answers
        // the add's reads later allows it). Nothing depends on the deleted task;
        // the container is empty, which a runner waits on (see the test below).
        expect(deleted.status).toBe('fulfilled');
        expect((added.reason as Error).name).toBe('UnknownDependencyError');
        expect((await store.loadSnapshot(name))!.tasks).toEqual([]);
        outcomes.set('fulfilled/rejected/empty', (outcomes.get('fulfilled/rejected/empty') ?? 0) + 1);
        continue;
      }
      const runner = await Runner.create({ store, container: name, handlers: { h: async () => 'ok' }, ...fast });
      const run = runner.run();
      const timer = setTimeout(() => void runner.stop(), 5_000);
      const result = await run;
      clearTimeout(timer);
      expect(result.status, `trial ${trial}: ${deleted.status}/${added.status}`).not.toBe('stopped');
      const snap = (await store.loadSnapshot(name))!;
      const b = snap.tasks.find((t) => t.record.name === 'b');
      if (b && !snap.tasks.some((t) => t.record.name === 'a')) expect(b.state.reason).toBe('dependency "a" does not exist');
      const key = `${deleted.status}/${added.status}/${result.status}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(8);
  });

  // Each ordering the race allows, made deterministic by holding one call's
  // command until the other call has returned (issue 12: on another server
  // the loop above met the first one, which the test did not expect).
  const orderings = [
    { hold: 'loadTaskRecords', until: 'delete', outcome: 'delete first: the add is refused, nothing waits' },
    { hold: 'deleteTask', until: 'add', outcome: 'the add between the delete\'s check and its delete: the dependent is skipped' },
    { hold: 'loadDependents', until: 'add', outcome: 'add first: the delete is refused' },
  ] as const;
  for (const [i, o] of orderings.entries()) {
    it(o.outcome, async () => {
      const { createClient } = await import('../src/index.js');
      const api = createClient({ connection: db().connection });
      const name = `ordered-${i}`;
      const c = await api.getOrCreateTaskContainer(name);
      await c.addTask('a', { handler: 'h' });
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const proto = MongoStore.prototype as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const real = proto[o.hold]!;
      let held = false;
      proto[o.hold] = async function (this: unknown, ...args: unknown[]) {
        // Only the call of the side that must wait: the add reads ['b', 'a'], the delete checks 'a'.
        const mine = o.hold === 'loadTaskRecords' ? (args[1] as string[]).includes('b') : args[1] === 'a';
        if (mine && !held) {
          held = true;
          await gate;
        }
        return real.apply(this, args);
      };
      let results: [PromiseSettledResult<unknown>, PromiseSettledResult<unknown>];
      try {
        const deleting = c.deleteTask('a');
        const adding = c.addTask('b', { dependsOn: ['a'], handler: 'h' });
        void (o.until === 'delete' ? deleting : adding).finally(release);
        results = await Promise.allSettled([deleting, adding]);
      } finally {
        release();
        proto[o.hold] = real;
      }
      expect(held).toBe(true);
      const [deleted, added] = results;
      const store = await MongoStore.create(db().connection);
      const names = () => store.loadSnapshot(name).then((s) => s!.tasks.map((t) => t.record.name));
      if (i === 0) {
        expect(deleted.status).toBe('fulfilled');
        expect(added.status === 'rejected' && (added.reason as Error).name).toBe('UnknownDependencyError');
        expect(await names()).toEqual([]);
        // An empty container of the 0.0.1 API: complete for 0.0.1, running for the engine (tasks may come).
        expect((await api.getTaskContainer(name))!.isComplete()).toBe(true);
        return;
      }
      if (i === 1) {
        expect([deleted.status, added.status]).toEqual(['fulfilled', 'fulfilled']);
        expect(await names()).toEqual(['b']);
      } else {
        expect(deleted.status === 'rejected' && (deleted.reason as { code?: string }).code).toBe('PTS_HAS_DEPENDENTS');
        expect(await names()).toEqual(['a', 'b']);
      }
      const runner = await Runner.create({ store, container: name, handlers: { h: async () => 'ok' }, ...fast });
      const run = runner.run();
      const timer = setTimeout(() => void runner.stop(), 10_000);
      const result = await run;
      clearTimeout(timer);
      expect(result.status).toBe(i === 1 ? 'failed' : 'succeeded');
      if (i === 1) expect(stateOf((await store.loadSnapshot(name))!, 'b').reason).toBe('dependency "a" does not exist');
    });
  }
});
