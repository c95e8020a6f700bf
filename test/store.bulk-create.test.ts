/**
 * Tasks are created with a few `insertMany` commands, not one insert per task,
 * and keep the semantics of one-by-one creation: idempotent by name, each name
 * inserted once under racing callers, declaration order kept, staged tasks
 * restaged, and a retry after a lost reply recognising its own inserts.
 * Real database; insert commands counted through the driver's command monitoring.
 */
import mongoose, { type Connection } from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import { defineContainer, DEFAULT_TASK_OPTIONS, MongoStore, Runner, type ContainerBuilder } from '../src/index.js';
import type { TaskDoc } from '../src/store/mongo/models.js';
import { INSERT_CHUNK } from '../src/store/mongo/task-records.js';
import type { NewTask } from '../src/store/types.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const extra: Connection[] = [];
afterAll(() => Promise.all(extra.map((c) => c.close())));

async function connect(options: mongoose.ConnectOptions = {}): Promise<Connection> {
  const c = await mongoose.createConnection(db().uri, { dbName: db().dbName, ...options }).asPromise();
  extra.push(c);
  return c;
}

const task = (name: string, extra: Partial<NewTask> = {}): NewTask => ({
  name, dependsOn: [], handler: 'h', input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null, ...extra,
});
const names = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `t${from + i}`);
const taskDocs = (c: Connection, container: string) =>
  c.collection<TaskDoc>('pts_tasks').find({ container }).sort({ order: 1 }).toArray();

describe('bulk task creation', () => {
  it('creating a container of 1,000 tasks issues ceil(1000 / chunk) inserts into the task collection', async () => {
    const conn = await connect({ monitorCommands: true });
    const store = await MongoStore.create(conn);
    const inserts: Array<{ collection: string; documents: number }> = [];
    conn.getClient().on('commandStarted', (e) => {
      if (e.commandName === 'insert') inserts.push({ collection: String(e.command.insert), documents: (e.command.documents as unknown[]).length });
    });
    let def = defineContainer('thousand') as ContainerBuilder<any>;
    for (let i = 0; i < 1000; i++) def = def.task(`t${i}`, async () => i);
    await Runner.create({ store, container: def });
    const taskInserts = inserts.filter((i) => i.collection === 'pts_tasks');
    expect(taskInserts.length).toBe(Math.ceil(1000 / INSERT_CHUNK));
    expect(taskInserts.reduce((s, i) => s + i.documents, 0)).toBe(1000);
    // + the container, and one page of the task directory per chunk (see src/store/mongo/directory.ts)
    expect(inserts.filter((i) => i.collection === 'pts_directory').length).toBe(taskInserts.length);
    // Besides: the container and its listing entry; on servers whose updates
    // are not atomic, one update gate per write of the container document
    // (its creation, the revision moved on after the inserts, the definition
    // recorded as applied; update-gate.ts).
    const gates = inserts.filter((i) => i.collection === 'pts_gates').length;
    expect(gates).toBeLessThanOrEqual(3);
    // And the declared graph, in pages of its own written before the
    // container document (src/store/mongo/graph-pages.ts): one for 1,000 tasks.
    const graphPages = inserts.filter((i) => i.collection === 'pts_graph').length;
    expect(graphPages).toBe(1);
    // And the runner's place on the roster (src/engine/roster.ts): one slot insert, taken in Runner.create.
    const roster = inserts.filter((i) => i.collection === 'pts_slots').length;
    expect(roster).toBe(1);
    expect(inserts.length - gates - graphPages - roster).toBeLessThanOrEqual(2 * taskInserts.length + 2);
    const docs = await taskDocs(conn, 'thousand');
    expect(docs.map((d) => d.name)).toEqual(names(1000)); // declaration order
    expect(new Set(docs.map((d) => d.order)).size).toBe(1000);
  });

  it('a mix of existing and new names: returns exactly the new ones, existing documents untouched', async () => {
    const store = await MongoStore.create(db().connection);
    await store.createContainer({ name: 'mix', failFast: true, definition: null });
    const firstNames = names(300).filter((_, i) => i % 3 === 0);
    expect(await store.addTasks('mix', firstNames.map((n) => task(n, { input: { v: 'old' } })))).toEqual(firstNames);
    const before = await taskDocs(db().connection, 'mix');
    const added = await store.addTasks('mix', names(700).map((n) => task(n, { input: { v: 'new' } })));
    expect(added).toEqual(names(700).filter((n) => !firstNames.includes(n)));
    const after = await taskDocs(db().connection, 'mix');
    expect(after).toHaveLength(700);
    const byName = new Map(after.map((d) => [d.name, d]));
    for (const d of before) expect(byName.get(d.name)).toEqual(d);
    // Repeating is a no-op; a name given twice in one call counts once.
    expect(await store.addTasks('mix', names(700).map((n) => task(n)))).toEqual([]);
    expect(await store.addTasks('mix', [task('dup'), task('dup', { handler: 'other' })])).toEqual(['dup']);
    expect((await taskDocs(db().connection, 'mix')).find((d) => d.name === 'dup')!.handler).toBe('h');
  });

  it('two concurrent callers with overlapping names (two connections) insert each name once', async () => {
    const [c1, c2] = await Promise.all([connect(), connect()]);
    const [s1, s2] = await Promise.all([MongoStore.create(c1), MongoStore.create(c2)]);
    await s1.createContainer({ name: 'race', failFast: true, definition: null });
    const all = names(1200);
    const [a, b] = await Promise.all([
      s1.addTasks('race', all.slice(0, 900).map((n) => task(n, { input: 'a' }))),
      s2.addTasks('race', all.slice(300).reverse().map((n) => task(n, { input: 'b' }))),
    ]);
    expect(new Set([...a, ...b])).toEqual(new Set(all));
    expect(a.length + b.length).toBe(all.length); // disjoint
    const docs = await taskDocs(db().connection, 'race');
    expect(docs).toHaveLength(all.length);
    const mine = new Set(a);
    for (const d of docs) expect(d.input).toBe(mine.has(d.name) ? 'a' : 'b');
  });

  it('a staged task takes the place of one staged by a failed attempt, not of a succeeded one', async () => {
    const store = await MongoStore.create(db().connection);
    await store.createContainer({ name: 'staged', failFast: false, definition: null });
    await store.addTasks('staged', [task('discover', { options: { ...DEFAULT_TASK_OPTIONS, retries: 5 } })]);
    const staged = (n: string, token: number) => task(n, { dynamic: true, addedBy: 'discover', stagedBy: token, input: token });
    const claimOf = { runnerId: 'r', attempt: 1, leaseMs: 60_000, checkpoint: null };
    const first = (await store.claimTask({ container: 'staged', task: 'discover', expectedToken: 0, claim: claimOf }))!;
    expect(await store.addTasks('staged', [staged('ghost', first.token)])).toEqual(['ghost']);
    expect(await store.addTasks('staged', [staged('ghost', first.token)])).toEqual([]); // same attempt: no-op
    const error = { name: 'Error', message: 'boom', code: null, stack: null, attempt: 1, at: new Date() };
    await store.finishAttempt(first, { kind: 'failed', error, retryAt: null });
    const second = (await store.claimTask({ container: 'staged', task: 'discover', expectedToken: first.token + 1, claim: { ...claimOf, attempt: 2 } }))!;
    const ghostBefore = (await taskDocs(db().connection, 'staged')).find((d) => d.name === 'ghost')!;
    // Restaged (the failed attempt's ghost is replaced, keeping its order) alongside a new name in the same bulk.
    expect(await store.addTasks('staged', [staged('ghost', second.token), staged('fresh', second.token)])).toEqual(['ghost', 'fresh']);
    const ghost = (await taskDocs(db().connection, 'staged')).find((d) => d.name === 'ghost')!;
    expect(ghost).toMatchObject({ stagedBy: second.token, input: second.token, order: ghostBefore.order });
    await store.finishAttempt(second, { kind: 'succeeded', output: null });
    // The attempt that staged it succeeded: a later stager cannot replace it.
    expect(await store.addTasks('staged', [staged('ghost', second.token + 2)])).toEqual([]);
    expect((await taskDocs(db().connection, 'staged')).find((d) => d.name === 'ghost')).toMatchObject({ stagedBy: second.token });
  });

  it('an insertMany whose reply was lost is retried and recognises its own documents (not someone else’s)', async () => {
    const store = await MongoStore.create(db().connection);
    await store.createContainer({ name: 'lost-reply', failFast: true, definition: null });
    expect(await store.addTasks('lost-reply', [task('theirs')])).toEqual(['theirs']);
    const collection = (store as unknown as { m: { tasks: mongoose.Model<TaskDoc> } }).m.tasks.collection as unknown as Record<string, unknown>;
    const real = (collection.insertMany as (...a: unknown[]) => Promise<unknown>).bind(collection);
    let calls = 0;
    collection.insertMany = async (...args: unknown[]) => {
      const call = ++calls;
      const outcome = await real(...args).then((value) => ({ value }), (error: unknown) => ({ error }));
      if (call === 1) throw new mongoose.mongo.MongoNetworkError('read ECONNRESET (injected)'); // landed, reply lost
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    };
    try {
      const added = await store.addTasks('lost-reply', ['theirs', ...names(INSERT_CHUNK + 10)].map((n) => task(n)));
      expect(added).toEqual(names(INSERT_CHUNK + 10));
    } finally {
      delete collection.insertMany;
    }
    expect(calls).toBe(3); // first chunk twice, second chunk once
    expect(await taskDocs(db().connection, 'lost-reply')).toHaveLength(INSERT_CHUNK + 11);
  });

  it('duplicates reported with another code than 11000 (FerretDB v2: 16908292) are recognised by reading back', async () => {
    const [c1, c2] = await Promise.all([connect(), connect()]);
    const stores = await Promise.all([MongoStore.create(c1), MongoStore.create(c2)]);
    for (const store of stores) {
      // The server's reply as FerretDB v2 words it.
      const collection = (store as unknown as { m: { tasks: mongoose.Model<TaskDoc> } }).m.tasks.collection as unknown as Record<string, unknown>;
      const real = (collection.insertMany as (...a: unknown[]) => Promise<unknown>).bind(collection);
      collection.insertMany = async (...args: unknown[]) =>
        real(...args).catch((error: { writeErrors?: Array<{ code?: number; err?: { code?: number } }>; code?: number }) => {
          for (const w of error.writeErrors ?? []) {
            if (w.code === 11000) Object.defineProperty(w, 'code', { value: 16908292 });
          }
          throw error;
        });
    }
    await stores[0]!.createContainer({ name: 'v2-dups', failFast: true, definition: null });
    const all = names(600);
    const [a, b] = await Promise.all([
      stores[0]!.addTasks('v2-dups', all.slice(0, 400).map((n) => task(n, { input: 'a' }))),
      stores[1]!.addTasks('v2-dups', all.slice(200).reverse().map((n) => task(n, { input: 'b' }))),
    ]);
    expect(new Set([...a, ...b])).toEqual(new Set(all));
    expect(a.length + b.length).toBe(all.length);
    const docs = await taskDocs(db().connection, 'v2-dups');
    const mine = new Set(a);
    for (const d of docs) expect(d.input).toBe(mine.has(d.name) ? 'a' : 'b');
    // Repeating is still a no-op.
    expect(await stores[1]!.addTasks('v2-dups', all.map((n) => task(n)))).toEqual([]);
  });
});
