/**
 * Log appends survive transient faults: a write whose reply was lost, or that
 * got no reply at all, is repeated with the same `_id` and nonce, and a
 * duplicate key carrying our own nonce is recognised as our own success.
 * The faults are injected around the real server's model (the write really
 * lands, then the "network" fails); no mock of MongoDB.
 */
import mongoose, { type Model } from 'mongoose';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, LeaseLostError, MongoStore } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();

const networkError = () => new mongoose.mongo.MongoNetworkError('read ECONNRESET (injected)');

/**
 * Replaces the insert of the store's transition collection (appends go out
 * as grouped `insertMany` commands) for the duration of `body`.
 */
async function withFaultyCreate<T>(
  store: MongoStore,
  fault: (real: () => Promise<unknown>, call: number) => Promise<unknown>,
  body: () => Promise<T>,
): Promise<{ result: T; calls: number }> {
  const collection = (store as unknown as { m: { transitions: Model<unknown> } }).m.transitions.collection as unknown as Record<string, unknown>;
  const real = (collection.insertMany as (...args: unknown[]) => Promise<unknown>).bind(collection);
  let calls = 0;
  collection.insertMany = (...args: unknown[]) => fault(() => real(...args), ++calls);
  try {
    return { result: await body(), calls };
  } finally {
    delete collection.insertMany;
  }
}

async function containerWithTask(store: MongoStore, name: string): Promise<void> {
  await store.createContainer({ name, failFast: true, definition: null });
  await store.addTasks(name, [{ name: 't', dependsOn: [], handler: 't', input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null }]);
}

const claimOf = (runnerId: string) => ({ runnerId, attempt: 1, leaseMs: 60_000, checkpoint: null });

describe('idempotent appends', () => {
  it('a claim whose reply was lost is recognised and kept, not lost and not a recovery', async () => {
    const store = await MongoStore.create(db().connection);
    await containerWithTask(store, 'lost-claim-reply');
    const { result: claim, calls } = await withFaultyCreate(
      store,
      async (real, call) => {
        const r = await real();
        if (call === 1) throw networkError(); // landed, but the reply is lost
        return r;
      },
      () => store.claimTask({ container: 'lost-claim-reply', task: 't', expectedToken: 0, claim: claimOf('me') }),
    );
    expect(calls).toBe(2);
    expect(claim).not.toBeNull();
    expect(claim!.token).toBe(1);
    const state = stateOf(await snapshotOf(db().connection, 'lost-claim-reply'), 't');
    expect(state).toMatchObject({ status: 'running', runnerId: 'me', attempt: 1, recoveries: 0, token: 1 });
    // The claim works: its outcome is accepted.
    await store.finishAttempt(claim!, { kind: 'succeeded', output: 'ok' });
    expect(stateOf(await snapshotOf(db().connection, 'lost-claim-reply'), 't').status).toBe('succeeded');
  });

  it('an outcome whose reply was lost is a success, not a lost lease, also when repeated by the caller', async () => {
    const store = await MongoStore.create(db().connection);
    await containerWithTask(store, 'lost-outcome-reply');
    const claim = (await store.claimTask({ container: 'lost-outcome-reply', task: 't', expectedToken: 0, claim: claimOf('me') }))!;
    await withFaultyCreate(
      store,
      async (real, call) => {
        const r = await real();
        if (call === 1) throw networkError();
        return r;
      },
      () => store.finishAttempt(claim, { kind: 'succeeded', output: { n: 1 } }),
    );
    // The engine repeats a whole outcome write after a longer outage: still ours.
    await store.finishAttempt(claim, { kind: 'succeeded', output: { n: 1 } });
    const state = stateOf(await snapshotOf(db().connection, 'lost-outcome-reply'), 't');
    expect(state).toMatchObject({ status: 'succeeded', output: { n: 1 }, token: 2 });
  });

  it('another writer at the position is still a lost lease / a lost claim', async () => {
    const a = await MongoStore.create(db().connection);
    await containerWithTask(a, 'foreign');
    const mine = (await a.claimTask({ container: 'foreign', task: 't', expectedToken: 0, claim: { ...claimOf('old'), leaseMs: 1 } }))!;
    expect(await a.claimTask({ container: 'foreign', task: 't', expectedToken: 0, claim: claimOf('late') })).toBeNull();
    const theirs = (await a.claimTask({ container: 'foreign', task: 't', expectedToken: 1, claim: claimOf('new') }))!;
    await expect(a.finishAttempt(mine, { kind: 'succeeded', output: 'stale' })).rejects.toBeInstanceOf(LeaseLostError);
    await expect(a.updateAttempt(mine, { progress: 0.5 })).rejects.toBeInstanceOf(LeaseLostError);
    await a.finishAttempt(theirs, { kind: 'succeeded', output: 'fresh' });
    // A heartbeat still in flight after our own outcome is not a lost lease.
    await a.updateAttempt(theirs, { progress: 1 });
  });

  it('a write with no reply times out after operationTimeoutMs and is retried, not blocked for 30 s', async () => {
    // 1.5 s per try: every real operation here must fit in it on a busy machine too.
    const store = await MongoStore.create(db().connection, { operationTimeoutMs: 1_500 });
    await containerWithTask(store, 'no-reply');
    const started = performance.now();
    const { result: claim } = await withFaultyCreate(
      store,
      async (real, call) => (call === 1 ? new Promise(() => undefined) : real()), // the first write never answers
      () => store.claimTask({ container: 'no-reply', task: 't', expectedToken: 0, claim: claimOf('me') }),
    );
    const elapsed = performance.now() - started;
    expect(claim?.token).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(1_490);
    expect(elapsed).toBeLessThan(20_000);
  });

  it('a transient error before the write landed is retried with the same _id', async () => {
    const store = await MongoStore.create(db().connection);
    await containerWithTask(store, 'reset-before');
    const { result, calls } = await withFaultyCreate(
      store,
      async (real, call) => {
        if (call <= 2) throw networkError();
        return real();
      },
      () => store.settleTask('reset-before', 't', 0, { kind: 'skipped', reason: 'test' }),
    );
    expect(result).toBe(true);
    expect(calls).toBe(3);
    expect(stateOf(await snapshotOf(db().connection, 'reset-before'), 't').status).toBe('skipped');
  });

  it('retried writes of a claim from before a delete and re-create never reach the new incarnation', async () => {
    const oldProcess = await MongoStore.create(db().connection);
    const newProcess = await MongoStore.create(db().connection);
    await containerWithTask(oldProcess, 'reborn-retry');
    const stale = (await oldProcess.claimTask({ container: 'reborn-retry', task: 't', expectedToken: 0, claim: claimOf('old') }))!;
    expect(await newProcess.deleteContainer('reborn-retry')).toBe(true);
    await containerWithTask(newProcess, 'reborn-retry');
    // The new run holds the same log position (1) as the stale claim, with another nonce.
    const fresh = (await newProcess.claimTask({ container: 'reborn-retry', task: 't', expectedToken: 0, claim: claimOf('new') }))!;
    expect(fresh.incarnation).not.toBe(stale.incarnation);

    // The stale heartbeat and outcome (its first reply lost, then repeated) go to the old keys.
    await oldProcess.updateAttempt(stale, { progress: 0.9, statusText: 'stale' });
    const { calls } = await withFaultyCreate(
      oldProcess,
      async (real, call) => {
        const r = await real();
        if (call === 1) throw networkError();
        return r;
      },
      () => oldProcess.finishAttempt(stale, { kind: 'succeeded', output: 'stale' }),
    );
    expect(calls).toBe(2);

    const state = stateOf(await snapshotOf(db().connection, 'reborn-retry'), 't');
    expect(state).toMatchObject({ status: 'running', runnerId: 'new', token: 1, progress: 0, statusText: '' });
    // The new run's own writes are unaffected: its heartbeat is no lost lease, its outcome lands.
    await newProcess.updateAttempt(fresh, { progress: 0.5 });
    await newProcess.finishAttempt(fresh, { kind: 'succeeded', output: 'fresh' });
    expect(stateOf(await snapshotOf(db().connection, 'reborn-retry'), 't')).toMatchObject({ status: 'succeeded', output: 'fresh', token: 2 });
  });

  it('a taken position reported with another code than 11000 (FerretDB v2: 16908292) is a lost claim, not an error', async () => {
    const a = await MongoStore.create(db().connection);
    await containerWithTask(a, 'v2-dup');
    const mine = (await a.claimTask({ container: 'v2-dup', task: 't', expectedToken: 0, claim: claimOf('first') }))!;
    const rewrite = async (real: () => Promise<unknown>) =>
      real().catch((error: { writeErrors?: Array<{ code?: number }> }) => {
        for (const w of error.writeErrors ?? []) if (w.code === 11000) Object.defineProperty(w, 'code', { value: 16908292 });
        throw error;
      });
    const { result } = await withFaultyCreate(a, rewrite, () => a.claimTask({ container: 'v2-dup', task: 't', expectedToken: 0, claim: claimOf('second') }));
    expect(result).toBeNull();
    // Our own outcome, repeated after its reply was lost, is still ours under that code.
    await withFaultyCreate(a, async (real, call) => {
      const r = await rewrite(real);
      if (call === 1) throw networkError();
      return r;
    }, () => a.finishAttempt(mine, { kind: 'succeeded', output: 1 }));
    expect(stateOf(await snapshotOf(db().connection, 'v2-dup'), 't')).toMatchObject({ status: 'succeeded', runnerId: 'first', output: 1 });
  });
});
