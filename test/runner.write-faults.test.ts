/**
 * Writes that survive faults: a database error never becomes a task's
 * failure, an error of any size is stored, stop() gives back a late claim,
 * and runners leave no listener on a shared signal. Faults are injected on
 * top of the real store (the real server underneath), like a dropped
 * connection would surface them.
 */
import { getEventListeners } from 'node:events';
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { defineContainer, LeaseLostError, MongoStore, Runner, type RunnerEventMap } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { sleep, snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;
const reset = () => new mongoose.mongo.MongoNetworkError('read ECONNRESET (injected)');

/** The real store with some methods replaced. */
async function faulty(patch: (real: MongoStore) => Partial<MongoStore>): Promise<MongoStore> {
  const real = await MongoStore.create(db().connection);
  return Object.assign(Object.create(real) as MongoStore, patch(real));
}

describe('writes that survive faults', () => {
  it('a success whose write fails (reply lost, then a reset) is recorded as a success, not a failure', async () => {
    let calls = 0;
    const store = await faulty((real) => ({
      finishAttempt: async (...args: Parameters<MongoStore['finishAttempt']>) => {
        calls += 1;
        if (calls === 1) {
          await real.finishAttempt(...args); // it lands, but the reply is lost
          throw reset();
        }
        if (calls === 2) throw reset(); // then the connection drops before the write
        return real.finishAttempt(...args);
      },
    }));
    const runner = await Runner.create({ store, container: defineContainer('lost-reply').task('a', async () => 'done'), ...fast });
    const events: string[] = [];
    for (const e of ['task:failed', 'task:retry', 'task:lease-lost', 'task:succeeded'] as const) runner.on(e, () => events.push(e));
    expect((await runner.run()).status).toBe('succeeded');
    expect(events).toEqual(['task:succeeded']);
    const state = stateOf(await snapshotOf(db().connection, 'lost-reply'), 'a');
    expect(state).toMatchObject({ status: 'succeeded', output: 'done', failures: 0, errors: [] });
  });

  it('a claim whose reply was lost is kept by the runner: one attempt, no recovery, no wait for the lease', async () => {
    const store = await MongoStore.create(db().connection);
    // Appends go out as grouped inserts on the transition collection: the first one is the claim.
    const model = (store as unknown as { m: { transitions: { collection: { insertMany: (...a: unknown[]) => Promise<unknown> } } } }).m.transitions
      .collection;
    const real = model.insertMany.bind(model);
    let calls = 0;
    model.insertMany = async (...args: unknown[]) => {
      const r = await real(...args);
      if (++calls === 1) throw reset(); // the claim landed; its reply is lost
      return r;
    };
    try {
      const runs: number[] = [];
      const container = defineContainer('lost-claim').task('a', async (ctx) => runs.push(ctx.attempt));
      const runner = await Runner.create({ store, container, leaseMs: 5_000, ...fast });
      const t0 = performance.now();
      expect((await runner.run()).status).toBe('succeeded');
      expect(performance.now() - t0).toBeLessThan(4_000);
      expect(runs).toEqual([1]);
      expect(stateOf(await snapshotOf(db().connection, 'lost-claim'), 'a')).toMatchObject({ attempt: 1, recoveries: 0 });
      expect(calls).toBeGreaterThanOrEqual(2); // the fault was injected, and the claim repeated
    } finally {
      delete (model as { insertMany?: unknown }).insertMany;
    }
  });

  it('heartbeats go on while a slow success write is on its way: nobody takes the task over', async () => {
    const slow = await faulty((real) => ({
      finishAttempt: async (...args: Parameters<MongoStore['finishAttempt']>) => {
        await sleep(2_500); // more than two leases before the write even reaches the server
        return real.finishAttempt(...args);
      },
    }));
    const container = () => defineContainer('slow-outcome').task('a', async (ctx) => `by ${ctx.runnerId}`);
    const a = await Runner.create({ store: slow, container: container(), runnerId: 'A', leaseMs: 1000, ...fast });
    const aStarted = new Promise<void>((r) => a.on('task:started', () => r()));
    const runA = a.run();
    await aStarted;
    const b = await Runner.create({ connection: db().connection, container: container(), runnerId: 'B', leaseMs: 1000, ...fast });
    const onB: string[] = [];
    b.on('task:started', (e) => onB.push(`started ${e.task}`));
    const lost: unknown[] = [];
    a.on('task:lease-lost', (e) => lost.push(e));
    const [ra, rb] = await Promise.all([runA, b.run()]);
    expect([ra.status, rb.status]).toEqual(['succeeded', 'succeeded']);
    expect(onB).toEqual([]);
    expect(lost).toEqual([]);
    const state = stateOf(await snapshotOf(db().connection, 'slow-outcome'), 'a');
    expect(state).toMatchObject({ status: 'succeeded', output: 'by A', attempt: 1, recoveries: 0 });
  });

  it('an outage longer than the lease stops the attempt without a failure; another attempt recovers the task', async () => {
    let outageUntil = 0;
    const down = () => performance.now() < outageUntil;
    const store = await faulty((real) => ({
      finishAttempt: async (...args: Parameters<MongoStore['finishAttempt']>) => {
        if (down()) throw reset();
        return real.finishAttempt(...args);
      },
      updateAttempt: async (...args: Parameters<MongoStore['updateAttempt']>) => {
        if (down()) throw reset();
        return real.updateAttempt(...args);
      },
    }));
    let runs = 0;
    const container = defineContainer('outage').task('a', { retries: 0 }, async () => {
      runs += 1;
      if (runs === 1) outageUntil = performance.now() + 1_500; // the database goes away as the task ends
      return `run ${runs}`;
    });
    const runner = await Runner.create({ store, container, leaseMs: 1000, ...fast });
    const errors: string[] = [];
    runner.on('runner:error', (e) => errors.push(e.error.message));
    const failed: unknown[] = [];
    runner.on('task:failed', (e) => failed.push(e));
    expect((await runner.run()).status).toBe('succeeded');
    expect(failed).toEqual([]);
    const state = stateOf(await snapshotOf(db().connection, 'outage'), 'a');
    // Not failed: recovered (by this same runner here) once the lease had run out.
    expect(state).toMatchObject({ status: 'succeeded', failures: 0, errors: [] });
    expect(state.recoveries).toBeGreaterThanOrEqual(1);
    expect(runs).toBe(state.attempt);
    expect(errors.some((m) => /could not be written before its lease ran out/.test(m))).toBe(true);
  });

  it('a 17 MB error is stored capped, and retries: 0 is honoured', async () => {
    let runs = 0;
    const container = defineContainer('huge-error').task('a', { retries: 0 }, async () => {
      runs += 1;
      throw new Error('x'.repeat(17 * 1024 * 1024));
    });
    const runner = await Runner.create({ connection: db().connection, container, leaseMs: 1000, maxRecoveries: 1, ...fast });
    expect((await runner.run()).status).toBe('failed');
    expect(runs).toBe(1);
    const state = stateOf(await snapshotOf(db().connection, 'huge-error'), 'a');
    expect(state.status).toBe('failed');
    expect(state.errors).toHaveLength(1);
    const { message, stack } = state.lastError!;
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(64 * 1024);
    expect(message).toMatch(/^x+… \[truncated: 17825792 bytes in all\]$/);
    expect(Buffer.byteLength(stack!)).toBeLessThanOrEqual(64 * 1024);
    expect(stack).toMatch(/\[truncated: \d+ bytes in all\]$/);
  });

  it('stop() while a claim is in flight releases that claim instead of starting it', async () => {
    let claimed!: () => void;
    const claimLanded = new Promise<void>((r) => (claimed = r));
    const store = await faulty((real) => ({
      claimTask: async (...args: Parameters<MongoStore['claimTask']>) => {
        const claim = await real.claimTask(...args);
        claimed();
        await sleep(400); // the reply is slow
        return claim;
      },
    }));
    let started = 0;
    const container = defineContainer('late-claim').task('a', async () => {
      started += 1;
      await sleep(8_000);
    });
    const runner = await Runner.create({ store, container, stopTimeoutMs: 300, ...fast });
    const released: unknown[] = [];
    runner.on('task:released', (e) => released.push(e));
    const run = runner.run();
    await claimLanded;
    const t0 = performance.now();
    await runner.stop();
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect((await run).status).toBe('stopped');
    expect(started).toBe(0);
    expect(released).toHaveLength(1);
    const state = stateOf(await snapshotOf(db().connection, 'late-claim'), 'a');
    expect(state).toMatchObject({ status: 'pending', token: 2, recoveries: 0 });
  });

  it('runners remove their listener from a shared options.signal when their run settles', async () => {
    const shared = new AbortController();
    for (let i = 0; i < 20; i++) {
      const runner = await Runner.create({
        connection: db().connection,
        container: defineContainer(`signal-${i}`).task('a', async () => i),
        signal: shared.signal,
        ...fast,
      });
      expect((await runner.run()).status).toBe('succeeded');
    }
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0);
  });

  it('an attempt that cannot confirm its heartbeats fences itself off with LeaseLostError within its lease', async () => {
    let heartbeatsFail = false;
    const store = await faulty((real) => ({
      updateAttempt: async (...args: Parameters<MongoStore['updateAttempt']>) => {
        if (heartbeatsFail) throw reset();
        return real.updateAttempt(...args);
      },
    }));
    let reason: unknown;
    let abortedAfterMs = -1;
    const container = defineContainer('cut-off').task('a', async (ctx) => {
      if (ctx.attempt > 1) return 'second';
      heartbeatsFail = true; // this runner is cut off from the database from now on
      const t0 = performance.now();
      await sleep(10_000, ctx.signal).catch((e: unknown) => {
        reason = e;
        abortedAfterMs = performance.now() - t0;
      });
      heartbeatsFail = false;
      return 'late';
    });
    // A 10 s lease fences 1 s before its end: a margin a busy machine's late timers stay within.
    const runner = await Runner.create({ store, container, leaseMs: 10_000, ...fast });
    const lost: Array<RunnerEventMap['task:lease-lost']> = [];
    runner.on('task:lease-lost', (e) => lost.push(e));
    expect((await runner.run()).status).toBe('succeeded');
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(abortedAfterMs).toBeGreaterThan(5_000);
    expect(abortedAfterMs).toBeLessThan(10_000); // before any reader may take over
    expect(lost).toHaveLength(1);
    // It gave the task back (nobody had taken it), and the next attempt succeeded.
    const state = stateOf(await snapshotOf(db().connection, 'cut-off'), 'a');
    expect(state).toMatchObject({ status: 'succeeded', attempt: 2, failures: 0 });
  });
});
