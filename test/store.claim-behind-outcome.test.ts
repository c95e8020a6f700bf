/**
 * A claim that takes over the slot of an attempt whose outcome is being
 * written (ClaimOrder) is never stored before that outcome: it rides in the
 * same ordered insert right behind it, and when the outcome is not stored
 * (its position taken, no reply) it waits until the attempt is over. The
 * inserts are watched on the real server's collection; no mock of MongoDB.
 */
import type { Model } from 'mongoose';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, LeaseLostError, MongoStore } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();

interface InsertCall {
  ids: string[];
  ordered: boolean | undefined;
}

/** Records every insert of the store's transition collection; `fault` may replace a call. */
function watchInserts(store: MongoStore, fault?: (real: () => Promise<unknown>, call: number) => Promise<unknown>): { calls: InsertCall[]; stop(): void } {
  const collection = (store as unknown as { m: { transitions: Model<unknown> } }).m.transitions.collection as unknown as Record<string, unknown>;
  const real = (collection.insertMany as (...args: unknown[]) => Promise<unknown>).bind(collection);
  const calls: InsertCall[] = [];
  collection.insertMany = (docs: Array<{ _id: string }>, options: { ordered?: boolean }) => {
    calls.push({ ids: docs.map((d) => d._id), ordered: options?.ordered });
    const go = () => real(docs, options);
    return fault ? fault(go, calls.length) : go();
  };
  return { calls, stop: () => void delete collection.insertMany };
}

async function containerWith(store: MongoStore, name: string, tasks: string[]): Promise<void> {
  await store.createContainer({ name, failFast: true, definition: null });
  await store.addTasks(
    name,
    tasks.map((t) => ({ name: t, dependsOn: [], handler: t, input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null })),
  );
}

const claimOf = (runnerId: string, leaseMs = 60_000) => ({ runnerId, attempt: 1, leaseMs, checkpoint: null });
const statusOf = async (container: string, task: string) => stateOf(await snapshotOf(db().connection, container), task).status;
const settleSoon = () => new Promise((r) => setTimeout(r, 300));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('a claim behind an outcome (slot handover)', () => {
  it('waits for the outcome, then goes in its insert right behind it (one ordered insert for both)', async () => {
    const store = await MongoStore.create(db().connection);
    await containerWith(store, 'behind', ['a', 'b']);
    const a = (await store.claimTask({ container: 'behind', task: 'a', expectedToken: 0, claim: claimOf('me') }))!;
    const over = deferred();
    const watch = watchInserts(store);
    try {
      const b = store.claimTask({ container: 'behind', task: 'b', expectedToken: 0, claim: claimOf('me'), after: { outcomeOf: a, over: over.promise } });
      await settleSoon();
      // Nothing written yet: a still runs, and b's claim waits behind a's outcome.
      expect(watch.calls).toEqual([]);
      expect(await statusOf('behind', 'b')).toBe('pending');
      await store.finishAttempt(a, { kind: 'succeeded', output: 1 });
      expect(await b).not.toBeNull();
      expect(watch.calls).toHaveLength(1);
      expect(watch.calls[0]!.ordered).toBe(true);
      // a's outcome (position 2), then b's claim (position 1).
      expect(watch.calls[0]!.ids.map((id) => (JSON.parse(id) as unknown[]).slice(1, 3))).toEqual([
        ['a', 2],
        ['b', 1],
      ]);
    } finally {
      watch.stop();
    }
    expect(await statusOf('behind', 'a')).toBe('succeeded');
    expect(await statusOf('behind', 'b')).toBe('running');
  });

  it('an outcome whose position another runner took: the claim behind it is not tried, and goes once the attempt is over', async () => {
    const store = await MongoStore.create(db().connection);
    await containerWith(store, 'taken', ['a', 'b']);
    const stale = (await store.claimTask({ container: 'taken', task: 'a', expectedToken: 0, claim: claimOf('old', 1) }))!;
    // Another runner took a over (its lease lapsed): a is running, under the other runner.
    expect(await store.claimTask({ container: 'taken', task: 'a', expectedToken: 1, claim: claimOf('new') })).not.toBeNull();
    const over = deferred();
    const watch = watchInserts(store);
    let b: ReturnType<MongoStore['claimTask']>;
    try {
      const outcome = store.finishAttempt(stale, { kind: 'succeeded', output: 'late' });
      b = store.claimTask({ container: 'taken', task: 'b', expectedToken: 0, claim: claimOf('old'), after: { outcomeOf: stale, over: over.promise } });
      await expect(outcome).rejects.toBeInstanceOf(LeaseLostError);
      await settleSoon();
      // The ordered insert stopped at the taken position: b was not written behind it.
      expect(watch.calls[0]).toMatchObject({ ordered: true });
      expect(watch.calls[0]!.ids).toHaveLength(2);
      expect(await statusOf('taken', 'b')).toBe('pending');
      over.resolve();
      expect(await b).not.toBeNull();
    } finally {
      watch.stop();
    }
    expect(await statusOf('taken', 'b')).toBe('running');
  });

  it('an insert with no reply: the outcome goes on alone, and the claim behind it only once the outcome is stored', async () => {
    const store = await MongoStore.create(db().connection);
    await containerWith(store, 'no-reply', ['a', 'b']);
    const a = (await store.claimTask({ container: 'no-reply', task: 'a', expectedToken: 0, claim: claimOf('me') }))!;
    const over = deferred();
    const { MongoNetworkError } = (await import('mongoose')).default.mongo;
    // The first insert (a's outcome and b's claim) never reaches the server.
    const watch = watchInserts(store, (real, call) => (call === 1 ? Promise.reject(new MongoNetworkError('read ECONNRESET (injected)')) : real()));
    try {
      const outcome = store.finishAttempt(a, { kind: 'succeeded', output: 1 });
      const b = store.claimTask({ container: 'no-reply', task: 'b', expectedToken: 0, claim: claimOf('me'), after: { outcomeOf: a, over: over.promise } });
      expect(await outcome).toBe('succeeded');
      expect(await b).not.toBeNull();
      const outcomeId = watch.calls[0]!.ids[0]!;
      const claimId = watch.calls[0]!.ids[1]!;
      const landedOutcome = watch.calls.findIndex((c, i) => i > 0 && c.ids.includes(outcomeId));
      const landedClaim = watch.calls.findIndex((c, i) => i > 0 && c.ids.includes(claimId));
      // Retried apart: the outcome first, then (after its reply) the claim.
      expect(landedOutcome).toBeGreaterThan(0);
      expect(landedClaim).toBeGreaterThan(landedOutcome);
    } finally {
      watch.stop();
    }
    expect(await statusOf('no-reply', 'a')).toBe('succeeded');
    expect(await statusOf('no-reply', 'b')).toBe('running');
  });
});
