/**
 * Container and task writes have a deadline and retry transient errors: with
 * a real TCP blackhole between the store and the server (writes get no
 * reply), createContainer, addTasks and deleteContainer fail with the typed
 * OperationTimeoutError after about `operationTimeoutMs` instead of blocking
 * for the driver's ~30 s; an outage shorter than `writeRetryMs` is ridden out,
 * and the retried write recognises what its own earlier try wrote. The
 * schedule and ledger stores behave alike.
 */
import mongoose, { type Connection } from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, MongoStore } from '../src/index.js';
import { MongoLedgerStore } from '../src/store/mongo/ledger-store.js';
import { MongoScheduleStore } from '../src/store/mongo/schedule-store.js';
import { OperationTimeoutError } from '../src/store/retry.js';
import type { NewTask } from '../src/store/types.js';
import { startTcpProxy, type TcpProxy } from '../tools/tcp-proxy.js';
import { databasePerFile } from './support/database.js';
import { sleep } from './support/engine.js';

const db = databasePerFile();
/**
 * Deadline of each try (operationTimeoutMs). Every real operation of these
 * tests must finish within it, also on a busy machine (a load average of 10
 * made 300 ms too short), so it is about ten times what they take alone.
 */
const DEADLINE_MS = 1_500;
/** An outage long enough for at least two tries to time out. */
const OUTAGE_MS = 2 * DEADLINE_MS + 1_000;
/** Far below the driver's own ~30 s, which is what a store without deadlines would wait. */
const GAVE_UP_BEFORE_MS = 20_000;
const opened: Array<{ proxy: TcpProxy; connection: Connection }> = [];
afterAll(async () => {
  for (const { proxy, connection } of opened) {
    proxy.heal();
    await connection.close(true);
    await proxy.close();
  }
});

/** A connection to the test database through a proxy that can be blackholed. */
async function throughProxy(): Promise<{ proxy: TcpProxy; connection: Connection }> {
  const upstream = new URL(db().uri);
  const proxy = await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port) });
  const connection = await mongoose
    .createConnection(`mongodb://127.0.0.1:${proxy.port}/`, { dbName: db().dbName, directConnection: true, serverSelectionTimeoutMS: 2_000 })
    .asPromise();
  opened.push({ proxy, connection });
  return { proxy, connection };
}

const task = (name: string): NewTask => ({ name, dependsOn: [], handler: 'h', input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null });
const names = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);

/** Runs `fn`, returning its error and how long it took, in ms. */
async function timed(fn: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    await fn();
    return { error: null, ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

describe('store operations with no reply', () => {
  it('createContainer, addTasks and deleteContainer time out with OperationTimeoutError, not after ~30 s', async () => {
    const { proxy, connection } = await throughProxy();
    const store = await MongoStore.create(connection, { operationTimeoutMs: DEADLINE_MS, writeRetryMs: 2 * DEADLINE_MS });
    await store.createContainer({ name: 'dark', failFast: true, definition: null }); // pins its incarnation
    proxy.blackhole();
    for (const op of [
      () => store.createContainer({ name: 'dark-new', failFast: true, definition: null }),
      () => store.addTasks('dark', names(10).map(task)),
      () => store.deleteContainer('dark'),
    ]) {
      const { error, ms } = await timed(op);
      expect(error).toBeInstanceOf(OperationTimeoutError);
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 10);
      expect(ms).toBeLessThan(GAVE_UP_BEFORE_MS);
    }
    proxy.heal();
  });

  it('an outage shorter than writeRetryMs is ridden out, and each retry recognises its own earlier write', async () => {
    const { proxy, connection } = await throughProxy();
    const store = await MongoStore.create(connection, { operationTimeoutMs: DEADLINE_MS, writeRetryMs: 60_000 });
    const observer = await MongoStore.create(db().connection);
    const outage = async <T>(fn: () => Promise<T>): Promise<T> => {
      proxy.blackhole();
      const result = fn();
      await sleep(OUTAGE_MS); // two or three tries time out, their bytes held back
      proxy.heal(); // the held writes land now, next to the retries
      return result;
    };
    const created = await outage(() => store.createContainer({ name: 'flaky', failFast: true, definition: null }));
    expect(created.created).toBe(true);
    expect((await observer.getContainer('flaky'))?.incarnation).toBe(created.record.incarnation);

    const added = await outage(() => store.addTasks('flaky', names(600).map(task)));
    expect(added).toEqual(names(600));
    expect((await observer.loadSnapshot('flaky'))!.tasks).toHaveLength(600);

    expect(await outage(() => store.deleteContainer('flaky'))).toBe(true);
    expect(await observer.getContainer('flaky')).toBeNull();
  });

  it('the schedule and ledger stores time out too, and ride out a short outage', async () => {
    const { proxy, connection } = await throughProxy();
    const schedules = await MongoScheduleStore.create(connection, { operationTimeoutMs: DEADLINE_MS, writeRetryMs: 2 * DEADLINE_MS });
    const ledger = await MongoLedgerStore.create(connection, { operationTimeoutMs: DEADLINE_MS, writeRetryMs: 60_000 });
    const slot = { schedule: 'nightly', slot: new Date(0), container: 'nightly-0', state: 'queued' as const, reason: null, claimedBy: 'me' };
    proxy.blackhole();
    const { error, ms } = await timed(() => schedules.claimSlot(slot));
    expect(error).toBeInstanceOf(OperationTimeoutError);
    expect(ms).toBeLessThan(GAVE_UP_BEFORE_MS);
    const entry = { id: 'e1', ledger: 'l', url: 'http://x/y', size: 1, checksum: 'c', recordedAt: new Date(), info: { n: 1 } };
    const inserted = ledger.insertEntry(entry);
    await sleep(OUTAGE_MS);
    proxy.heal();
    expect(await inserted).toBe(true);
    expect(await ledger.findEntries(['e1'])).toHaveLength(1);
  });
});

describe('store operations whose reply was lost', () => {
  const lostFirstReply = (model: Record<string, unknown>, method: string, asQuery: boolean) => {
    const real = (model[method] as (...a: unknown[]) => unknown).bind(model);
    let calls = 0;
    const fail = () => new mongoose.mongo.MongoNetworkError('read ECONNRESET (injected)');
    model[method] = (...args: unknown[]) => {
      const call = ++calls;
      if (asQuery) {
        const query = real(...args) as { exec(): Promise<unknown> };
        return call === 1 ? { exec: async () => (await query.exec(), Promise.reject(fail())) } : query;
      }
      return call === 1 ? (real(...args) as Promise<unknown>).then(() => Promise.reject(fail())) : real(...args);
    };
    return { calls: () => calls, restore: () => delete model[method] };
  };
  const modelsOf = (store: MongoStore) => (store as unknown as { m: Record<string, Record<string, unknown>> }).m;

  it('createContainer and deleteContainer, retried after a lost reply, report their own write', async () => {
    const store = await MongoStore.create(db().connection);
    const create = lostFirstReply(modelsOf(store).containers!, 'create', false);
    let created;
    try {
      created = await store.createContainer({ name: 'lost', failFast: true, definition: null });
    } finally {
      create.restore();
    }
    expect(create.calls()).toBe(2);
    expect(created.created).toBe(true);
    await store.addTasks('lost', names(3).map(task));
    const update = lostFirstReply(modelsOf(store).containers!, 'updateOne', true);
    let deleted;
    try {
      deleted = await store.deleteContainer('lost');
    } finally {
      update.restore();
    }
    expect(update.calls()).toBe(2);
    expect(deleted).toBe(true);
    expect(await store.getContainer('lost')).toBeNull();
    expect(await db().connection.collection('pts_tasks').countDocuments({ container: 'lost' })).toBe(0);
    // Someone else's container or tombstone is still not ours.
    expect(await store.deleteContainer('lost')).toBe(false);
    await store.createContainer({ name: 'theirs', failFast: true, definition: null });
    expect((await store.createContainer({ name: 'theirs', failFast: true, definition: null })).created).toBe(false);
  });
});
