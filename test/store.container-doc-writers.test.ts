import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, MongoScheduleStore, MongoStore } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

// FerretDB v1 runs an update as a read, then a write of the whole document by
// `_id` in another transaction, so two processes updating one container
// document at once overwrote each other: 3 x 40 revision moves left about
// half of them, and a cancel request could vanish under a neighbour's write.
it('processes writing one container document at once lose none of each other’s changes', async () => {
  const store = await MongoStore.create(db().connection);
  await store.createContainer({ name: 'shared-doc', failFast: false, definition: [] });
  const before = (await store.readContainerHead('shared-doc'))!.revision;
  const dir = makeTempDir();
  const go = path.join(dir, 'go');
  const rounds = 40;
  const env = { MONGODB_URI: db().uriWithDb, CONTAINER: 'shared-doc', ROUNDS: String(rounds), GO_FILE: go };
  const writers = ['A', 'B', 'C'].map((name, i) =>
    spawnTsChild('test/fixtures/container-doc-writer.ts', [], { ...env, ...(i === 1 ? { CANCEL_AT: '20' } : {}) }, { label: `writer-${name}` }),
  );
  await Promise.all(writers.map((w) => w.waitForLine('ready', 60_000)));
  fs.writeFileSync(go, '');
  await Promise.all(writers.map((w) => w.waitForLine('done', 180_000)));

  const head = (await store.readContainerHead('shared-doc'))!;
  // Every move of the revision landed: 3 x 40 updates and the cancel request.
  expect(head.revision - before).toBe(3 * rounds + 1);
  const doc = await db().connection.collection('pts_containers').findOne({ _id: 'shared-doc' as never });
  expect(doc?.cancelRequestedAt).toBeInstanceOf(Date);
});

it('a gate left by a process killed while holding it is taken over after its lease', async () => {
  // This store's own lease would be 6 s: the holder's, written in its gate, counts.
  const store = await MongoStore.create(db().connection, { operationTimeoutMs: 1_000, writeRetryMs: 1_000 });
  await store.createContainer({ name: 'orphan-gate', failFast: false, definition: [] });
  const dir = makeTempDir();
  const go = path.join(dir, 'go');
  fs.writeFileSync(go, '');
  const holder = spawnTsChild('test/fixtures/container-doc-writer.ts', [], {
    MONGODB_URI: db().uriWithDb,
    CONTAINER: 'orphan-gate',
    ROUNDS: '1',
    GO_FILE: go,
    DIE_HOLDING: '1',
  });
  expect((await holder.waitForExit(60_000)).signal).toBe('SIGKILL');
  const gates = db().connection.collection('pts_gates');
  expect(await gates.countDocuments({ key: 'containers:orphan-gate' })).toBe(1);

  const before = (await store.readContainerHead('orphan-gate'))!.revision;
  const started = performance.now();
  expect(await store.requestCancel('orphan-gate')).toBe(true);
  // The holder's lease, written in its gate: its operationTimeoutMs (default 10 s) + 5 s, judged on this process's clock.
  expect(performance.now() - started).toBeGreaterThanOrEqual(15_000);
  expect((await store.readContainerHead('orphan-gate'))!.revision).toBe(before + 1);
  expect(await gates.countDocuments({ key: 'containers:orphan-gate' })).toBe(0);
});

it('schedulers and a trigger writing one schedule head at once never undo each other’s writes', async () => {
  const dir = makeTempDir();
  const go = path.join(dir, 'go');
  const env = { MONGODB_URI: db().uriWithDb, SCHEDULE: 'shared-head', ROUNDS: '40', GO_FILE: go };
  const writers = ['cursor', 'trigger', 'handover'].map((ROLE) =>
    spawnTsChild('test/fixtures/schedule-head-writer.ts', [], { ...env, ROLE }, { label: `head-${ROLE}` }),
  );
  await Promise.all(writers.map((w) => w.waitForLine('ready', 60_000)));
  fs.writeFileSync(go, '');
  await Promise.all(writers.map((w) => w.waitForLine('done', 180_000)));
  // Each writer read its own write back after it was acknowledged: an advanced
  // cursor or a trigger request overwritten by a neighbour's stale write counts.
  expect(writers.flatMap((w) => w.lines.filter((l) => l.startsWith('undone')))).toEqual(['undone 0', 'undone 0', 'undone 0']);
  const head = (await (await MongoScheduleStore.create(db().connection)).getHead('shared-head'))!;
  expect(head.cursor.toISOString()).toBe('2026-01-02T16:00:00.000Z');
  expect(head.trigger?.requestedAt.toISOString()).toBe('2026-01-01T00:00:40.000Z');
});

// The same kind of fault on task documents: two 0.0.1 processes editing one
// task at once (`updateTask`) each wrote back a stale copy of the other's fields.
it('processes updating one task record at once never undo each other’s fields', async () => {
  const store = await MongoStore.create(db().connection);
  await store.createContainer({ name: 'shared-task', failFast: false, definition: null });
  await store.addTasks('shared-task', [
    { name: 't', dependsOn: [], handler: 't', input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null },
  ]);
  const dir = makeTempDir();
  const go = path.join(dir, 'go');
  const rounds = 40;
  const env = { MONGODB_URI: db().uriWithDb, CONTAINER: 'shared-task', TASK: 't', ROUNDS: String(rounds), GO_FILE: go };
  const writers = ['input', 'handler', 'dependsOn'].map((field) =>
    spawnTsChild('test/fixtures/task-record-writer.ts', [], { ...env, FIELD: field }, { label: `writer-${field}` }),
  );
  await Promise.all(writers.map((w) => w.waitForLine('ready', 60_000)));
  fs.writeFileSync(go, '');
  await Promise.all(writers.map((w) => w.waitForLine('done', 180_000)));
  // No writer ever found its own field undone right after writing it, and every field holds its last round.
  expect(writers.flatMap((w) => w.lines.filter((l) => l.startsWith('regressed')))).toEqual([]);
  const doc = await db().connection.collection('pts_tasks').findOne({ container: 'shared-task', name: 't' });
  expect([doc?.input, doc?.handler, doc?.dependsOn]).toEqual([{ round: rounds }, `h${rounds}`, [`d${rounds}`]]);
}, 240_000);

it('every write of a container document in the store goes through its update gate (writeContainer), every update of a task document through its own', () => {
  // A write added without the gate would bring the lost updates above back on FerretDB v1.
  const dir = path.join(__dirname, '../src/store/mongo');
  const ungated: string[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const lines = fs.readFileSync(path.join(dir, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const container = /\.containers\.(updateOne|updateMany|replaceOne|deleteOne|deleteMany|create|insertMany|bulkWrite|findOneAndUpdate)\(/.test(line);
      // Task documents: inserts and deletes are atomic per document; updates are a read then a write on FerretDB v1.
      const task = /\.tasks\.(updateOne|updateMany|replaceOne|findOneAndUpdate|bulkWrite)\(/.test(line);
      if (!container && !task) return;
      const before = lines.slice(Math.max(0, i - 3), i + 1).join('\n');
      if (!before.includes(container ? 'writeContainer(' : 'writeGated(')) ungated.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
  expect(ungated).toEqual([]);
});
