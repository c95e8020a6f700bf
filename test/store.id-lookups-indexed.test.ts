/**
 * Every read, update and delete by exact `_id` (the store's point lookups:
 * the container, a task, one log position) is served by an index, so its
 * cost does not grow with the documents of other containers. On FerretDB
 * v1.24.2 this needs the `_id` expression index our server build adds
 * (FerretDB's own `_id` index is not matched by its `_id` filter: SQLite
 * plans "SCAN"); on MongoDB it is the `_id` index (IDHACK / EXPRESS).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, MongoStore } from '../src/index.js';
import { taskKey, transitionKey } from '../src/store/mongo/keys.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();

/** The server's query plan of `find({ _id })` on one collection, as JSON. */
async function planOf(collection: string, id: string): Promise<string> {
  // A real query first: SQLite plans an EXPLAIN on the schema its connection
  // last loaded, and only a statement that runs notices a newer one.
  await db().connection.db!.collection(collection).findOne({ _id: id as never });
  const res = await db().connection.db!.command({ explain: { find: collection, filter: { _id: id } } });
  return JSON.stringify(res.queryPlanner ?? res);
}

const usesIndex = (plan: string) => /USING INDEX|IDHACK|EXPRESS|IXSCAN/.test(plan) && !/COLLSCAN|detail=SCAN /.test(plan);

describe('point lookups by _id', () => {
  it('are served by an index on containers, tasks and the task log (not a collection scan)', async () => {
    const store = await MongoStore.create(db().connection);
    const { record } = await store.createContainer({ name: 'indexed', failFast: false, definition: null });
    await store.addTasks('indexed', [
      { name: 'a', dependsOn: [], handler: 'a', input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null },
    ]);
    await store.claimTask({ container: 'indexed', task: 'a', expectedToken: 0, claim: { runnerId: 'r', attempt: 1, leaseMs: 60_000, checkpoint: null } });
    const lookups: Array<[string, string]> = [
      ['pts_containers', 'indexed'],
      ['pts_tasks', taskKey('indexed', 'a', record.incarnation)],
      ['pts_transitions', transitionKey('indexed', 'a', 1, record.incarnation)],
    ];
    // The embedded FerretDB adds its index within a second of a collection's creation.
    const deadline = Date.now() + 30_000;
    let plans: string[] = [];
    do {
      plans = await Promise.all(lookups.map(([c, id]) => planOf(c, id)));
      if (plans.every(usesIndex)) break;
      await new Promise((r) => setTimeout(r, 250));
    } while (Date.now() < deadline);
    for (const [i, plan] of plans.entries()) expect(usesIndex(plan), `${lookups[i]![0]}: ${plan}`).toBe(true);
  });
});
