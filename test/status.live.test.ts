import mongoose from 'mongoose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineContainer, getContainerStatus, NotFoundError, Runner } from '../src/index.js';
import { useTestDatabase, type TestDatabase } from './support/database.js';
import { sleep } from './support/engine.js';

let db: TestDatabase;
let observer: mongoose.Connection;
beforeAll(async () => {
  db = await useTestDatabase();
  observer = await mongoose.createConnection(db.uriWithDb).asPromise();
});
afterAll(async () => {
  await observer.close();
  await db.drop();
});

it('reports live progress, per-task state and an ETA to another connection', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let halfway!: () => void;
  const reachedHalf = new Promise<void>((r) => (halfway = r));
  const container = defineContainer('live', { failFast: false })
    .task('quick', async () => {
      await sleep(100);
      return 'q';
    })
    .task('broken', { retries: 0 }, async () => {
      throw new Error('disk full');
    })
    .task('long', { dependsOn: ['quick'] }, async (ctx) => {
      await ctx.progress(0.5, 'half way');
      halfway();
      await gate;
      return 'l';
    })
    .task('last', { dependsOn: ['long'] }, async () => 'done');
  const runner = await Runner.create({ connection: db.connection, container, pollMs: 50, checkpointIntervalMs: 0 });
  const run = runner.run();
  await reachedHalf;
  await sleep(50);

  const mid = await getContainerStatus('live', { connection: observer });
  expect(mid.status).toBe('running');
  expect(mid.total).toBe(4);
  expect(mid.counts).toMatchObject({ succeeded: 1, failed: 1, running: 1, pending: 1 });
  // quick (1) + broken (0: it failed before reporting progress) + long (0.5) + last (0), over 4 tasks
  expect(mid.percentComplete).toBe(37.5);
  const long = mid.tasks.find((t) => t.name === 'long')!;
  expect(long).toMatchObject({ status: 'running', attempt: 1, percentComplete: 50, statusText: 'half way' });
  expect(long.startedAt).toBeInstanceOf(Date);
  expect(long.runnerId).toBe(runner.runnerId);
  const broken = mid.tasks.find((t) => t.name === 'broken')!;
  expect(broken.lastError?.message).toBe('disk full');
  expect(mid.tasks.find((t) => t.name === 'quick')!.durationMs).toBeGreaterThanOrEqual(90);
  expect(mid.etaMs).toBeGreaterThan(0);

  release();
  expect((await run).status).toBe('failed');
  const end = await getContainerStatus('live', { connection: observer });
  // A failed container never shows 100 %: broken did nothing.
  expect(end.percentComplete).toBe(75);
  expect(end.tasks.find((t) => t.name === 'broken')!.percentComplete).toBe(0);
  expect(end.etaMs).toBe(0);
  expect(end.finishedAt).toBeInstanceOf(Date);

  await expect(getContainerStatus('nope', { connection: observer })).rejects.toBeInstanceOf(NotFoundError);
});

it('reading status never writes: no collections appear in a database that has none', async () => {
  const empty = observer.useDb(`${db.dbName}_empty`);
  await expect(getContainerStatus('anything', { connection: empty })).rejects.toBeInstanceOf(NotFoundError);
  expect(await empty.db!.listCollections().toArray()).toEqual([]);
});
