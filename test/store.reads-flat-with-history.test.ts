/**
 * A whole-container read of a small container costs the same whatever else
 * the database holds: read by key (`containerReads: 'by-key'`, the default on
 * FerretDB) it sends only exact-`_id` finds (the one lookup FerretDB v1
 * serves without scanning the collection), the same number with or without
 * hundreds of old containers; and it sees exactly what a read by filter sees.
 * Counted with the driver's command monitoring (counts, never times).
 */
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, MongoStore, type NewTask } from '../src/index.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
let connection: mongoose.Connection;
let byKey: MongoStore;
let byFilter: MongoStore;
let filters: Array<{ name: string; filter: unknown }> | null = null;

beforeAll(async () => {
  connection = await mongoose.createConnection(db().uriWithDb, { monitorCommands: true }).asPromise();
  connection.getClient().on('commandStarted', (e) => {
    if (filters && (e.commandName === 'find' || e.commandName === 'aggregate' || e.commandName === 'count')) {
      filters.push({ name: `${e.commandName} ${String(e.command[e.commandName])}`, filter: e.command.filter ?? e.command.pipeline ?? e.command.query });
    }
  });
  byKey = await MongoStore.create(connection, { containerReads: 'by-key' });
  byFilter = await MongoStore.create(connection, { containerReads: 'by-filter' });
});
afterAll(() => connection?.close());

const task = (name: string, extra: Partial<NewTask> = {}): NewTask => ({
  name,
  dependsOn: [],
  handler: name,
  input: { name },
  options: DEFAULT_TASK_OPTIONS,
  dynamic: false,
  addedBy: null,
  ...extra,
});
const claim = { runnerId: 'r', attempt: 1, leaseMs: 60_000, checkpoint: null };

/** A container of `n` tasks: the first succeeded, the second claimed, the rest untouched. */
async function smallContainer(store: MongoStore, name: string, n: number): Promise<void> {
  await store.createContainer({ name, failFast: false, definition: null });
  await store.addTasks(name, Array.from({ length: n }, (_, i) => task(`t${i}`)));
  const c = await store.claimTask({ container: name, task: 't0', expectedToken: 0, claim });
  await store.finishAttempt(c!, { kind: 'succeeded', output: { ok: 1 } });
  await store.claimTask({ container: name, task: 't1', expectedToken: 0, claim });
}

async function findsOf(read: () => Promise<unknown>): Promise<Array<{ name: string; filter: unknown }>> {
  filters = [];
  try {
    await read();
    return filters;
  } finally {
    filters = null;
  }
}

const isExactId = (f: { filter: unknown }) => {
  const filter = f.filter as Record<string, unknown> | undefined;
  return !!filter && Object.keys(filter).length === 1 && typeof filter._id === 'string';
};

describe('reading a small container by key', () => {
  it('sends only exact-_id finds, as many with 300 old containers as in an empty database', async () => {
    await smallContainer(byKey, 'fresh', 5);
    const empty = await findsOf(() => byKey.loadSnapshot('fresh'));
    expect(empty.length).toBeGreaterThan(0);
    expect(empty.filter((f) => !isExactId(f))).toEqual([]);

    for (let i = 0; i < 300; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => smallContainer(byFilter, `old-${i + j}`, 3)));
    }
    const withHistory = await findsOf(() => byKey.loadSnapshot('fresh'));
    expect(withHistory.filter((f) => !isExactId(f))).toEqual([]);
    expect(withHistory.length).toBe(empty.length);
    // A read by filter of the same container asks the server to pick out its documents among all.
    const scan = await findsOf(() => byFilter.loadSnapshot('fresh'));
    expect(scan.filter((f) => !isExactId(f)).length).toBeGreaterThan(0);
  }, 300_000);

  it('sees what a read by filter sees: staged tasks, renames, deletes, a container created again', async () => {
    await byKey.createContainer({ name: 'mixed', failFast: false, definition: null });
    await byKey.addTasks('mixed', [task('a'), task('b'), task('c')]);
    const a = await byKey.claimTask({ container: 'mixed', task: 'a', expectedToken: 0, claim });
    // Staged by a's attempt: part of the container only once a succeeded.
    await byKey.addTasks('mixed', [task('a1', { addedBy: 'a', stagedBy: 1, dynamic: true })]);
    expect((await byKey.loadSnapshot('mixed'))!.tasks.map((t) => t.record.name)).not.toContain('a1');
    await byKey.finishAttempt(a!, { kind: 'succeeded', output: [1, 2] });
    await byKey.updateTaskRecord('mixed', 'b', { name: 'b2' });
    await byKey.deleteTask('mixed', 'c');
    const b = await byKey.claimTask({ container: 'mixed', task: 'b2', expectedToken: 0, claim });
    await byKey.finishAttempt(b!, { kind: 'failed', error: { message: 'no' }, retryAt: new Date() } as never);
    for (const outputs of [true, false]) {
      const keyed = await byKey.loadSnapshot('mixed', { outputs });
      const filtered = await byFilter.loadSnapshot('mixed', { outputs });
      expect(keyed!.tasks.map((t) => t.record.name)).toEqual(['a', 'b2', 'a1']);
      expect({ ...keyed, readAt: null }).toEqual({ ...filtered, readAt: null });
    }

    await byKey.deleteContainer('mixed');
    expect(await byKey.loadSnapshot('mixed')).toBeNull();
    await byKey.createContainer({ name: 'mixed', failFast: false, definition: null });
    await byKey.addTasks('mixed', [task('z')]);
    const again = await byKey.loadSnapshot('mixed');
    expect(again!.tasks.map((t) => [t.record.name, t.state.status])).toEqual([['z', 'pending']]);
    expect({ ...again, readAt: null }).toEqual({ ...(await byFilter.loadSnapshot('mixed')), readAt: null });
  });
});
