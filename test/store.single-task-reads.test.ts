/**
 * The narrow reads of the store (loadTask, loadTaskRecords, loadDependents)
 * see exactly what loadSnapshot sees of the same tasks: staged tasks only once
 * the attempt that staged them succeeded, documents of the current
 * incarnation only, nothing of a deleted container.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, MongoStore, type ContainerSnapshot, type NewTask } from '../src/index.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
let store: MongoStore;
beforeAll(async () => {
  store = await MongoStore.create(db().connection);
});

const task = (name: string, dependsOn: string[] = [], extra: Partial<NewTask> = {}): NewTask => ({
  name,
  dependsOn,
  handler: name,
  input: { name },
  options: DEFAULT_TASK_OPTIONS,
  dynamic: false,
  addedBy: null,
  ...extra,
});
const claimOf = (runnerId: string) => ({ runnerId, attempt: 1, leaseMs: 60_000, checkpoint: null });

/** Checks every narrow read of `container` against its snapshot, for these names. */
async function expectSameAsSnapshot(container: string, names: string[]): Promise<ContainerSnapshot> {
  const snapshot = (await store.loadSnapshot(container))!;
  const { status: _status, finishedAt: _finishedAt, ...head } = snapshot.container;
  for (const name of names) {
    const read = await store.loadTask(container, name);
    expect(read, name).toEqual({ container: head, task: snapshot.tasks.find((t) => t.record.name === name) ?? null });
    const dependents = snapshot.tasks.filter((t) => t.record.dependsOn.includes(name)).map((t) => t.record);
    expect(await store.loadDependents(container, name), `dependents of ${name}`).toEqual(dependents);
  }
  const records = await store.loadTaskRecords(container, [...names].reverse());
  const visible = [...names].reverse().flatMap((n) => snapshot.tasks.filter((t) => t.record.name === n).map((t) => t.record));
  expect(records).toEqual({ container: head, records: visible });
  return snapshot;
}

describe('single-task reads of the store', () => {
  it('agree with loadSnapshot: states, staged tasks, dependents', async () => {
    const c = 'narrow';
    await store.createContainer({ name: c, failFast: false, definition: null });
    await store.addTasks(c, [task('a'), task('b', ['a']), task('c', ['a', 'b']), task('discover'), task('finder')]);
    const a = (await store.claimTask({ container: c, task: 'a', expectedToken: 0, claim: claimOf('r1') }))!;
    await store.updateAttempt(a, { progress: 0.5, statusText: 'half', checkpoint: { page: 2 } });
    await store.finishAttempt(a, { kind: 'succeeded', output: 'A' });
    await store.settleTask(c, 'b', 0, { kind: 'edited', set: { statusText: 'by hand', progress: 0.25 } });
    // A task staged by an attempt that succeeds is there; one staged by an attempt that fails is not.
    const discover = (await store.claimTask({ container: c, task: 'discover', expectedToken: 0, claim: claimOf('r1') }))!;
    await store.addTasks(c, [task('kid-ok', ['a'], { dynamic: true, addedBy: 'discover', stagedBy: discover.token })]);
    const finder = (await store.claimTask({ container: c, task: 'finder', expectedToken: 0, claim: claimOf('r2') }))!;
    await store.addTasks(c, [task('kid-lost', ['a'], { dynamic: true, addedBy: 'finder', stagedBy: finder.token })]);
    const names = ['a', 'b', 'c', 'discover', 'finder', 'kid-ok', 'kid-lost', 'missing'];
    // Before the outcomes: neither staged task is there.
    await expectSameAsSnapshot(c, names);
    expect((await store.loadTask(c, 'kid-ok'))!.task).toBeNull();
    await store.finishAttempt(discover, { kind: 'succeeded', output: null });
    const error = { name: 'Error', message: 'no', code: null, stack: null, attempt: 1, at: new Date() };
    await store.finishAttempt(finder, { kind: 'failed', error, retryAt: null });
    const snapshot = await expectSameAsSnapshot(c, names);
    expect(snapshot.tasks.map((t) => t.record.name)).toContain('kid-ok');
    expect((await store.loadTask(c, 'kid-lost'))!.task).toBeNull();
    expect((await store.loadTask(c, 'a'))!.task!.state).toMatchObject({ status: 'succeeded', output: 'A', checkpoint: { page: 2 } });
    expect((await store.loadDependents(c, 'a')).map((t) => t.name)).toEqual(['b', 'c', 'kid-ok']);
  });

  it('see only the current incarnation, and nothing of a deleted container', async () => {
    const c = 'narrow-reborn';
    const oldProcess = await MongoStore.create(db().connection);
    await oldProcess.createContainer({ name: c, failFast: false, definition: null });
    await oldProcess.addTasks(c, [task('a'), task('b', ['a'])]);
    await oldProcess.settleTask(c, 'a', 0, { kind: 'edited', set: { statusText: 'old' } });

    expect(await store.deleteContainer(c)).toBe(true);
    expect(await store.loadTask(c, 'a')).toBeNull();
    expect(await store.loadTaskRecords(c, ['a'])).toBeNull();
    expect(await store.loadDependents(c, 'a')).toEqual([]);

    await store.createContainer({ name: c, failFast: false, definition: null });
    await store.addTasks(c, [task('a'), task('b', ['a'])]);
    // Late writes of the old run: under its incarnation, invisible in the new one.
    await oldProcess.settleTask(c, 'a', 1, { kind: 'edited', set: { statusText: 'late' } });
    await oldProcess.settleTask(c, 'b', 0, { kind: 'skipped', reason: 'stale' });
    await expectSameAsSnapshot(c, ['a', 'b']);
    expect((await store.loadTask(c, 'a'))!.task!.state).toMatchObject({ token: 0, statusText: '' });
    expect((await store.loadTask(c, 'b'))!.task!.state.status).toBe('pending');
  });
});
