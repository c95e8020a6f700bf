import { describe, expect, it } from 'vitest';
import {
  cancelContainer,
  defineContainer,
  MongoStore,
  NonRetryableError,
  Runner,
  type RunnerEventMap,
} from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { sleep, snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();

const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

describe('runner: failures', () => {
  it('retries with exponential backoff and persists every attempt error with its stack', async () => {
    const startedAt: number[] = [];
    const container = defineContainer('retry').task(
      'flaky',
      { retries: 3, backoff: { initialMs: 100, factor: 2, jitter: 0 } },
      async (ctx) => {
        startedAt.push(Date.now());
        if (ctx.attempt < 4) throw new Error(`boom ${ctx.attempt}`);
        return 'ok';
      },
    );
    const retries: Array<RunnerEventMap['task:retry']> = [];
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    runner.on('task:retry', (e) => retries.push(e));
    expect((await runner.run()).status).toBe('succeeded');

    expect(startedAt).toHaveLength(4);
    const gaps = startedAt.slice(1).map((t, i) => t - startedAt[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(100);
    expect(gaps[1]).toBeGreaterThanOrEqual(200);
    expect(gaps[2]).toBeGreaterThanOrEqual(400);
    expect(retries.map((r) => r.delayMs)).toEqual([100, 200, 400]);

    const state = stateOf(await snapshotOf(db().connection, 'retry'), 'flaky');
    expect(state.status).toBe('succeeded');
    expect(state.attempt).toBe(4);
    expect(state.errors.map((e) => e.message)).toEqual(['boom 1', 'boom 2', 'boom 3']);
    expect(state.errors[0]!.stack).toContain('runner.failures.test.ts');
    expect(state.output).toBe('ok');
  });

  it('fails for good after the last retry, skips downstream tasks and fails the container', async () => {
    const ran: string[] = [];
    const container = defineContainer('fail-fast')
      .task('bad', { retries: 1, backoff: { initialMs: 10, jitter: 0 } }, async () => {
        throw new Error('always');
      })
      .task('after-bad', { dependsOn: ['bad'] }, async () => void ran.push('after-bad'))
      .task('slow-sibling', async (ctx) => {
        await sleep(5_000, ctx.signal);
      })
      .task('after-sibling', { dependsOn: ['slow-sibling'] }, async () => void ran.push('after-sibling'));
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    expect((await runner.run()).status).toBe('failed');
    expect(ran).toEqual([]);
    const snap = await snapshotOf(db().connection, 'fail-fast');
    expect(stateOf(snap, 'bad').status).toBe('failed');
    expect(stateOf(snap, 'bad').attempt).toBe(2);
    expect(stateOf(snap, 'after-bad').status).toBe('skipped');
    expect(stateOf(snap, 'after-bad').reason).toMatch(/bad/);
    // fail-fast aborted the running sibling through its signal
    expect(stateOf(snap, 'slow-sibling').status).toBe('cancelled');
    expect(stateOf(snap, 'after-sibling').status).toBe('skipped');
    expect(snap.container.status).toBe('failed');
  });

  it('with failFast: false, independent branches finish first', async () => {
    const container = defineContainer('keep-going', { failFast: false })
      .task('bad', { retries: 0 }, async () => {
        throw new NonRetryableError('nope');
      })
      .task('after-bad', { dependsOn: ['bad'] }, async () => 'never')
      .task('sibling', async () => {
        await sleep(200);
        return 1;
      })
      .task('after-sibling', { dependsOn: ['sibling'] }, async (ctx) => ctx.deps.sibling + 1);
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    expect((await runner.run()).status).toBe('failed');
    const snap = await snapshotOf(db().connection, 'keep-going');
    expect(stateOf(snap, 'after-bad').status).toBe('skipped');
    expect(stateOf(snap, 'after-sibling').status).toBe('succeeded');
    expect(stateOf(snap, 'after-sibling').output).toBe(2);
  });

  it('NonRetryableError skips the remaining retries', async () => {
    let calls = 0;
    const container = defineContainer('non-retryable').task('t', { retries: 5 }, async () => {
      calls += 1;
      throw new NonRetryableError('bad input');
    });
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    expect((await runner.run()).status).toBe('failed');
    expect(calls).toBe(1);
    expect(stateOf(await snapshotOf(db().connection, 'non-retryable'), 't').lastError?.code).toBe('PTS_NON_RETRYABLE');
  });

  it('times out an attempt, aborts its signal, and retries', async () => {
    const reasons: unknown[] = [];
    const container = defineContainer('timeout').task(
      'slow',
      { timeoutMs: 150, retries: 1, backoff: { initialMs: 10, jitter: 0 } },
      async (ctx) => {
        if (ctx.attempt === 1) {
          await sleep(10_000, ctx.signal).catch((e: unknown) => {
            reasons.push(ctx.signal.reason);
            throw e;
          });
        }
        return 'second time lucky';
      },
    );
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    expect((await runner.run()).status).toBe('succeeded');
    const state = stateOf(await snapshotOf(db().connection, 'timeout'), 'slow');
    expect(state.errors).toHaveLength(1);
    expect(state.errors[0]!.name).toBe('TaskTimeoutError');
    expect(state.errors[0]!.message).toMatch(/150 ms/);
    expect((reasons[0] as Error).name).toBe('TaskTimeoutError');
  });

  it('cancelling a container aborts running handlers and cancels the rest', async () => {
    let started!: () => void;
    const isStarted = new Promise<void>((r) => (started = r));
    let abortedWith: unknown;
    const container = defineContainer('cancel')
      .task('long', async (ctx) => {
        started();
        await sleep(30_000, ctx.signal).catch((e: unknown) => {
          abortedWith = e;
          throw e;
        });
      })
      .task('next', { dependsOn: ['long'] }, async () => 'never');
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    const run = runner.run();
    await isStarted;
    expect(await cancelContainer(await MongoStore.create(db().connection), 'cancel')).toBe(true);
    expect((await run).status).toBe('cancelled');
    expect((abortedWith as Error).name).toBe('CancelledError');
    const snap = await snapshotOf(db().connection, 'cancel');
    expect(stateOf(snap, 'long').status).toBe('cancelled');
    expect(stateOf(snap, 'next').status).toBe('cancelled');
  });

  it('a listener that throws does not break the runner', async () => {
    const errors: string[] = [];
    const container = defineContainer('listener').task('a', async () => 1).task('b', { dependsOn: ['a'] }, async () => 2);
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    runner.on('task:succeeded', () => {
      throw new Error('listener bug');
    });
    runner.on('task:started', async () => {
      throw new Error('async listener bug');
    });
    runner.on('runner:error', (e) => errors.push(e.error.message));
    expect((await runner.run()).status).toBe('succeeded');
    expect(errors.filter((m) => m === 'listener bug')).toHaveLength(2);
    await sleep(10);
    expect(errors.filter((m) => m === 'async listener bug')).toHaveLength(2);
  });

  it('hands the last checkpoint to the next attempt', async () => {
    const seen: unknown[] = [];
    const container = defineContainer('checkpoint').task(
      'download',
      { retries: 2, backoff: { initialMs: 10, jitter: 0 } },
      async (ctx) => {
        seen.push(ctx.lastCheckpoint);
        let offset = (ctx.lastCheckpoint as { offset: number } | undefined)?.offset ?? 0;
        while (offset < 100) {
          offset += 10;
          await ctx.checkpoint({ offset });
          await ctx.progress(offset / 100, `${offset} bytes`);
          if (ctx.attempt === 1 && offset === 40) throw new Error('connection reset');
        }
        return offset;
      },
    );
    const runner = await Runner.create({ connection: db().connection, container, pollMs: 50, checkpointIntervalMs: 20 });
    expect((await runner.run()).status).toBe('succeeded');
    expect(seen).toEqual([undefined, { offset: 40 }]);
    const state = stateOf(await snapshotOf(db().connection, 'checkpoint'), 'download');
    expect(state.checkpoint).toEqual({ offset: 100 });
    expect(state.statusText).toBe('100 bytes');
  });

  it('graceful stop releases leases so another runner continues at once', async () => {
    let calls = 0;
    const container = () =>
      defineContainer('stop').task('work', async (ctx) => {
        calls += 1;
        if (calls === 1) await sleep(60_000, ctx.signal);
        return calls;
      });
    const first = await Runner.create({
      connection: db().connection,
      container: container(),
      stopTimeoutMs: 100,
      leaseMs: 60_000,
      ...fast,
    });
    const started = new Promise<void>((r) => first.on('task:started', () => r()));
    const run = first.run();
    await started;
    await first.stop();
    expect((await run).status).toBe('stopped');
    expect(stateOf(await snapshotOf(db().connection, 'stop'), 'work').status).toBe('pending');

    // The lease is 60 s, yet the second runner does not wait for it.
    const second = await Runner.create({ connection: db().connection, container: container(), ...fast });
    const t0 = Date.now();
    expect((await second.run()).status).toBe('succeeded');
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(stateOf(await snapshotOf(db().connection, 'stop'), 'work').output).toBe(2);
  });

  it('a task whose runners keep dying fails with RecoveryLimitError instead of looping forever', async () => {
    const container = () => defineContainer('crashy').task('oom', async () => 'never reached');
    // Create the container, then simulate three runners that claimed the task and died.
    const store = await MongoStore.create(db().connection);
    await Runner.create({ connection: db().connection, container: container() });
    let token = 0;
    for (let i = 1; i <= 3; i++) {
      const claim = await store.claimTask({ container: 'crashy', task: 'oom', expectedToken: token, claim: { runnerId: `dead-${i}`, attempt: i, leaseMs: 1, checkpoint: null } });
      token = claim!.token;
    }
    await sleep(5);
    const runner = await Runner.create({ connection: db().connection, container: container(), maxRecoveries: 2, ...fast });
    expect((await runner.run()).status).toBe('failed');
    const state = stateOf(await snapshotOf(db().connection, 'crashy'), 'oom');
    expect(state.status).toBe('failed');
    expect(state.lastError?.name).toBe('RecoveryLimitError');
    expect(state.output).toBeNull();
  });

  it('a database error while scheduling is reported and the run goes on', async () => {
    const real = await MongoStore.create(db().connection);
    let failures = 2;
    // Fault injection on top of the real store: the first two claims fail like a dropped connection.
    const flaky = Object.create(real) as MongoStore;
    flaky.claimTask = async (...args: Parameters<MongoStore['claimTask']>) => {
      if (failures-- > 0) throw new Error('connection reset by peer');
      return real.claimTask(...args);
    };
    const errors: string[] = [];
    const runner = await Runner.create({
      store: flaky,
      container: defineContainer('hiccup').task('a', async () => 'fine'),
      ...fast,
    });
    runner.on('runner:error', (e) => errors.push(`${e.context}: ${e.error.message}`));
    expect((await runner.run()).status).toBe('succeeded');
    expect(errors).toEqual(['scheduling: connection reset by peer', 'scheduling: connection reset by peer']);
  });

  it('deleting the container under a running runner aborts its attempts and rejects run()', async () => {
    let aborted: unknown;
    const container = defineContainer('deleted').task('long', async (ctx) => {
      await sleep(30_000, ctx.signal).catch((e: unknown) => {
        aborted = e;
        throw e;
      });
    });
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    const started = new Promise<void>((r) => runner.on('task:started', () => r()));
    const run = runner.run();
    await started;
    // run() may reject before the delete (tombstone, then purge) returns: expect it already.
    const rejected = expect(run).rejects.toThrow(/deleted while running/);
    await (await MongoStore.create(db().connection)).deleteContainer('deleted');
    await rejected;
    expect((aborted as Error).name).toBe('NotFoundError');
    // Nothing was written for the aborted attempt: no orphan history is left behind.
    expect(await db().connection.collection('pts_transitions').countDocuments({ container: 'deleted' })).toBe(0);
  });
});
