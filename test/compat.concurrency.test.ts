import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, MongoStore, type CompatClient, type CompatContainer } from '../src/index.js';
import { uniqueName, viaCallback } from './support/compat.js';
import { useTestDatabase, type TestDatabase } from './support/database.js';
import { sleep } from './support/engine.js';

let db: TestDatabase;
let second: mongoose.Connection;
let a: CompatClient;
let b: CompatClient;
beforeAll(async () => {
  db = await useTestDatabase();
  // Two clients on two connections, as two processes would have.
  second = mongoose.createConnection(db.uriWithDb);
  await second.asPromise();
  a = createClient({ connection: db.connection });
  b = createClient({ connection: second });
});
afterAll(async () => {
  await second.close();
  await db.drop();
});

describe('compat API under concurrency', () => {
  it('racing getOrCreateTaskContainer calls from two clients create exactly one container', async () => {
    const name = uniqueName('race');
    const calls = Array.from({ length: 10 }, (_, i) =>
      viaCallback((done) => (i % 2 === 0 ? a : b).getOrCreateTaskContainer(name, done)),
    );
    const results = await Promise.all(calls);
    for (const r of results) {
      expect(r.args[0]).toBeNull();
      expect((r.args[1] as CompatContainer).name).toBe(name);
    }
    expect(results.filter((r) => r.args[2] === true)).toHaveLength(1);
    expect(results.filter((r) => r.args[2] === false)).toHaveLength(9);
    const store = await MongoStore.create(db.connection);
    expect((await store.listContainers()).filter((c) => c.name === name)).toHaveLength(1);
  });

  it('concurrent getNextTask calls from two clients never hand out the same task', async () => {
    const c = await a.getOrCreateTaskContainer(uniqueName('next'));
    const names = ['t1', 't2', 't3', 't4', 't5'];
    for (const n of names) await c.addTask(n, null);
    const cb = (await b.getTaskContainer(c.name))!;
    const got = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? c : cb).getNextTask()));
    const handed = got.filter((t) => t !== null).map((t) => t!.name());
    expect(handed.sort()).toEqual(names);
    expect(got.filter((t) => t === null)).toHaveLength(5);
    for (const t of await c.getTasks()) {
      expect(t.invokeCount()).toBe(1);
      expect(t.status()).toBe('running');
    }
  });

  it('getNextTask respects dependencies', async () => {
    const c = await a.getOrCreateTaskContainer(uniqueName('deps'));
    await c.addTask('fetch', null);
    await c.addTask('parse', { dependsOn: ['fetch'] });
    await c.addTask('store', { dependsOn: ['parse'] });
    await c.addTask('free', null);
    expect((await c.getNextTask())?.name()).toBe('fetch');
    expect((await c.getNextTask())?.name()).toBe('free');
    await expect(c.getNextTask()).resolves.toBeNull();
    await c.updateTask('fetch', { isComplete: true });
    expect((await c.getNextTask())?.name()).toBe('parse');
    await expect(c.getNextTask()).resolves.toBeNull();
    // A failed dependency blocks its dependents.
    await c.updateTask('parse', { hasFailed: true });
    await expect(c.getNextTask()).resolves.toBeNull();
    await c.updateTask('parse', { hasFailed: false, isComplete: true });
    expect((await c.getNextTask())?.name()).toBe('store');
  });

  it('hands a task out again once its lease expired', async () => {
    const shortLease = createClient({ connection: db.connection, leaseMs: 500 });
    const c = await shortLease.getOrCreateTaskContainer(uniqueName('lease'));
    await c.addTask('only', { processingData: { step: 1 } });
    const first = await c.getNextTask();
    expect(first?.invokeCount()).toBe(1);
    expect(first!.leasedTill()!.getTime() - first!.lastInvokedAt()!.getTime()).toBe(500);
    await expect(c.getNextTask()).resolves.toBeNull();
    await sleep(first!.leasedTill()!.getTime() - Date.now() + 50);
    const again = await c.getNextTask();
    expect(again?.name()).toBe('only');
    expect(again?.invokeCount()).toBe(2);
    expect(again?.processingData()).toEqual({ step: 1 }); // carried to the next attempt
    // Extending the lease through updateTask keeps it from being handed out.
    await c.updateTask('only', { leasedTill: new Date(Date.now() + 60_000) });
    await sleep(550);
    await expect(c.getNextTask()).resolves.toBeNull();
  });

  it('concurrent updateTask calls on one task all land (each is retried on a moved token)', async () => {
    const c = await a.getOrCreateTaskContainer(uniqueName('upd'));
    await c.addTask('shared', null);
    const other = (await b.getTaskContainer(c.name))!;
    await Promise.all([
      c.updateTask('shared', { statusText: 'text' }),
      other.updateTask('shared', { percentageComplete: 50 }),
      c.updateTask('shared', { processingData: { k: 1 } }),
      other.updateTask('shared', { invokeCount: 4 }),
    ]);
    const t = (await c.getTask('shared'))!;
    expect([t.statusText(), t.percentageComplete(), t.processingData(), t.invokeCount()]).toEqual(['text', 50, { k: 1 }, 4]);
  });
});
