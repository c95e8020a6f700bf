/**
 * Issue 12 §B: a delete whose purge is slow (held here until the test lets
 * it go) must never reach the container created again under the same name
 * meanwhile: the new container keeps its tasks and its log, and no work of
 * it runs again. The deleting process has its own connection, as another
 * process would; its purge commands are held before they are sent.
 */
import mongoose from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import { defineContainer, MongoStore, Runner } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { stateOf } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;
const connections: mongoose.Connection[] = [];
afterAll(async () => {
  for (const c of connections) await c.close();
});

/** Holds every `deleteMany` of one model until `release()`; counts the held calls. */
function holdDeleteMany(model: Record<string, unknown>) {
  const real = (model.deleteMany as (...a: unknown[]) => { exec(): Promise<unknown> }).bind(model);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let held = 0;
  model.deleteMany = (...args: unknown[]) => {
    const query = real(...args);
    return {
      exec: async () => {
        held++;
        await gate;
        return query.exec();
      },
    };
  };
  return { release, held: () => held, restore: () => delete model.deleteMany };
}

describe('delete and re-create under a slow purge', () => {
  for (const late of ['tasks', 'transitions', 'graph'] as const) {
    it(`a purge whose ${{ tasks: 'task', transitions: 'log', graph: 'declared graph' }[late]} step comes late leaves the new container whole`, async () => {
      const name = `phoenix-${late}`;
      const runs: string[] = [];
      const define = (inc: string) =>
        defineContainer(name)
          .task('fetch', async () => {
            runs.push(`${inc}:fetch`);
            return `${inc}:fetched`;
          })
          .task('parse', { dependsOn: ['fetch'] }, async (ctx) => {
            runs.push(`${inc}:parse`);
            return `${String(ctx.deps.fetch)}+parsed`;
          });
      const store = await MongoStore.create(db().connection);
      expect((await (await Runner.create({ store, container: define('1'), ...fast })).run()).status).toBe('succeeded');

      const other = await mongoose.createConnection(db().uriWithDb).asPromise();
      connections.push(other);
      const deleter = await MongoStore.create(other);
      const hold = holdDeleteMany((deleter as unknown as { m: Record<string, Record<string, unknown>> }).m[late]!);
      const deleting = deleter.deleteContainer(name);
      try {
        // The tombstone is written; the purge is held at its `late` step.
        for (let i = 0; i < 500 && hold.held() === 0; i++) await new Promise((r) => setTimeout(r, 10));
        expect(hold.held()).toBe(1);
        expect(await store.getContainer(name)).toBeNull();

        // Created again and run while the old purge is still on its way.
        const runner = await Runner.create({ store, container: define('2'), ...fast });
        expect((await runner.run()).status).toBe('succeeded');
      } finally {
        hold.release();
        hold.restore();
      }
      expect(await deleting).toBe(true);

      const snap = (await store.loadSnapshot(name))!;
      expect(snap.container.status).toBe('succeeded');
      expect(snap.tasks.map((t) => t.record.name)).toEqual(['fetch', 'parse']);
      expect(stateOf(snap, 'parse').output).toBe('2:fetched+parsed');
      expect(stateOf(snap, 'fetch').attempt).toBe(1);
      // A later runner finds everything done: nothing runs again.
      expect((await (await Runner.create({ store, container: define('3'), ...fast })).run()).status).toBe('succeeded');
      expect(runs).toEqual(['1:fetch', '1:parse', '2:fetch', '2:parse']);
    });
  }

  it('a delete repeated after one that died half-way finishes its purge', async () => {
    const store = await MongoStore.create(db().connection);
    const container = defineContainer('half-deleted').task('a', async () => 'a');
    expect((await (await Runner.create({ store, container, ...fast })).run()).status).toBe('succeeded');
    const raw = db().connection;
    // What a deleter killed right after its tombstone leaves behind.
    await raw.collection('pts_containers').updateOne({ _id: 'half-deleted' as never }, { $set: { deletedAt: new Date() } });
    expect(await store.getContainer('half-deleted')).toBeNull();
    expect(await store.deleteContainer('half-deleted')).toBe(false);
    expect(await raw.collection('pts_containers').countDocuments({ _id: 'half-deleted' as never })).toBe(0);
    expect(await raw.collection('pts_tasks').countDocuments({ container: 'half-deleted' })).toBe(0);
    expect(await raw.collection('pts_transitions').countDocuments({ container: 'half-deleted' })).toBe(0);
    expect(await raw.collection('pts_graph').countDocuments({ container: 'half-deleted' })).toBe(0);
  });
});
