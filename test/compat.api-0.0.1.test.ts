import mongoose from 'mongoose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CompatContainer,
  CompatTask,
  createClient,
  CycleError,
  DuplicateTaskError,
  InvalidNameError,
  InvalidOptionError,
  MongoStore,
  NotFoundError,
  UnknownDependencyError,
  ValidationError,
} from '../src/index.js';
import { compatClientPerFile, uniqueName, viaCallback } from './support/compat.js';

const { db, api } = compatClientPerFile();
let store: MongoStore;
beforeAll(async () => {
  store = await MongoStore.create(db().connection);
});

async function freshContainer(prefix = 'c'): Promise<CompatContainer> {
  return api().getOrCreateTaskContainer(uniqueName(prefix));
}

async function rawState(container: string, task: string) {
  const snapshot = await store.loadSnapshot(container);
  const t = snapshot?.tasks.find((x) => x.record.name === task);
  if (!t) throw new Error(`no task ${task}`);
  return t;
}

describe('client', () => {
  it('getTaskContainer: null for a missing container (callback and promise)', async () => {
    const name = uniqueName('missing');
    const cb = await viaCallback((done) => api().getTaskContainer(name, done));
    expect(cb.sync).toBe(false);
    expect(cb.args).toEqual([null, null]);
    await expect(api().getTaskContainer(name)).resolves.toBeNull();
  });

  it('getOrCreateTaskContainer: creates once, then finds (callback with isNew, promise with the container)', async () => {
    const name = uniqueName('goc');
    const first = await viaCallback((done) => api().getOrCreateTaskContainer(name, done));
    expect(first.sync).toBe(false);
    expect(first.args[0]).toBeNull();
    expect(first.args[1]).toBeInstanceOf(CompatContainer);
    expect((first.args[1] as CompatContainer).name).toBe(name);
    expect(first.args[2]).toBe(true);

    const second = await viaCallback((done) => api().getOrCreateTaskContainer(name, done));
    expect(second.args[0]).toBeNull();
    expect((second.args[1] as CompatContainer).name).toBe(name);
    expect(second.args[2]).toBe(false);

    const viaPromise = await api().getOrCreateTaskContainer(name);
    expect(viaPromise).toBeInstanceOf(CompatContainer);
    expect(viaPromise.name).toBe(name);

    const found = await api().getTaskContainer(name);
    expect(found?.name).toBe(name);
    const cb = await viaCallback((done) => api().getTaskContainer(name, done));
    expect((cb.args[1] as CompatContainer).name).toBe(name);

    // Made for the 0.0.1 API: no declared definition, fail fast.
    const record = await store.getContainer(name);
    expect(record).toMatchObject({ name, definition: null, failFast: false, status: 'running' });
  });

  it('deleteTaskContainer: deletes the container and its tasks; a missing one is not an error', async () => {
    const c = await freshContainer('del');
    await c.addTask('t1', { taskData: { x: 1 } });
    const cb = await viaCallback((done) => api().deleteTaskContainer(c.name, done));
    expect(cb.sync).toBe(false);
    expect(cb.args).toEqual([null, c.name]);
    await expect(api().getTaskContainer(c.name)).resolves.toBeNull();

    // Missing: still fine, both forms.
    await expect(api().deleteTaskContainer(c.name)).resolves.toBe(c.name);
    const again = await viaCallback((done) => api().deleteTaskContainer(c.name, done));
    expect(again.args).toEqual([null, c.name]);

    // Re-created empty: no leftover tasks.
    const recreated = await api().getOrCreateTaskContainer(c.name);
    await expect(recreated.getTasks()).resolves.toEqual([]);
    expect(recreated.isComplete()).toBe(true);
  });

  it('rejects invalid container names in both forms', async () => {
    for (const bad of ['', '$bad', 'a.b', ' padded', 42 as unknown as string]) {
      await expect(api().getOrCreateTaskContainer(bad)).rejects.toBeInstanceOf(InvalidNameError);
      const cb = await viaCallback((done) => api().getTaskContainer(bad, done));
      expect(cb.args[0]).toBeInstanceOf(InvalidNameError);
      expect(cb.args).toHaveLength(1);
      await expect(api().deleteTaskContainer(bad)).rejects.toBeInstanceOf(InvalidNameError);
    }
  });

  it('validates createClient options and callbacks', () => {
    expect(() => createClient({ leaseMs: 0 })).toThrow(InvalidOptionError);
    expect(() => createClient({ leaseMs: Number.NaN })).toThrow(/leaseMs/);
    expect(() => api().getTaskContainer('x', 'not a function' as never)).toThrow(/callback/);
  });
});

describe('container', () => {
  it('a new task has the 0.0.1 defaults', async () => {
    const c = await freshContainer();
    const task = await c.addTask('defaults', null);
    expect(task).toBeInstanceOf(CompatTask);
    expect(task.name()).toBe('defaults');
    expect(task.isComplete()).toBe(false);
    expect(task.percentageComplete()).toBe(0);
    expect(task.statusText()).toBe('');
    expect(task.taskData()).toBeNull();
    expect(task.processingData()).toBeNull();
    expect(task.invokeCount()).toBe(0);
    expect(task.lastInvokedAt()).toBeNull();
    expect(task.taskEndedAt()).toBeNull();
    expect(task.taskDurationInMilliseconds()).toBeNull();
    expect(task.leasedTill()).toBeNull();
    expect(task.maxRetries()).toBe(3);
    expect(task.delayBetweenRetriesInSeconds()).toBe(30);
    expect(task.hasFailed()).toBe(false);
    expect(task.status()).toBe('pending');
    expect(task.dependsOn()).toEqual([]);
    expect(task.handler()).toBe('defaults');
    expect(JSON.parse(JSON.stringify(task))).toEqual({
      name: 'defaults',
      isComplete: false,
      percentageComplete: 0,
      statusText: '',
      taskData: null,
      processingData: null,
      invokeCount: 0,
      lastInvokedAt: null,
      taskEndedAt: null,
      taskDurationInMilliseconds: null,
      leasedTill: null,
      maxRetries: 3,
      delayBetweenRetriesInSeconds: 30,
      hasFailed: false,
    });
    // The record the engine sees: constant 30 s backoff, 3 retries.
    const raw = await rawState(c.name, 'defaults');
    expect(raw.record).toMatchObject({ handler: 'defaults', dynamic: false, addedBy: null, input: null });
    expect(raw.record.options).toMatchObject({ retries: 3, backoff: { initialMs: 30_000, factor: 1, jitter: 0 } });
  });

  it('addTask: callback (with and without values) and promise forms', async () => {
    const c = await freshContainer();
    const a = await viaCallback((done) => c.addTask('a', { taskData: { n: 1 } }, done));
    expect(a.sync).toBe(false);
    expect(a.args[0]).toBeNull();
    expect((a.args[1] as CompatTask).taskData()).toEqual({ n: 1 });
    const b = await viaCallback((done) => c.addTask('b', null, done));
    expect((b.args[1] as CompatTask).name()).toBe('b');
    const cc = await viaCallback((done) => c.addTask('c', done));
    expect((cc.args[1] as CompatTask).name()).toBe('c');
    const d = await c.addTask('d', { maxRetries: 5, delayBetweenRetriesInSeconds: 2.5 });
    expect(d.maxRetries()).toBe(5);
    expect(d.delayBetweenRetriesInSeconds()).toBe(2.5);
    const e = await c.addTask('e');
    expect(e.name()).toBe('e');
    expect((await c.getTasks()).map((t) => t.name())).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('addTask accepts every 0.0.1 field and maps it onto the engine state', async () => {
    const c = await freshContainer();
    const started = new Date('2024-01-02T03:04:05.000Z');
    const ended = new Date('2024-01-02T03:04:07.500Z');
    const task = await c.addTask('full', {
      taskData: { url: 'https://example.com', list: [1, 2, { deep: true }] },
      maxRetries: 1,
      delayBetweenRetriesInSeconds: 10,
      percentageComplete: 57,
      statusText: 'halfway',
      processingData: { offset: 42 },
      invokeCount: 2,
      lastInvokedAt: started,
      taskEndedAt: ended.toISOString(),
      isComplete: true,
    });
    expect(task.isComplete()).toBe(true);
    expect(task.hasFailed()).toBe(false);
    expect(task.percentageComplete()).toBe(57);
    expect(task.statusText()).toBe('halfway');
    expect(task.taskData()).toEqual({ url: 'https://example.com', list: [1, 2, { deep: true }] });
    expect(task.processingData()).toEqual({ offset: 42 });
    expect(task.invokeCount()).toBe(2);
    expect(task.lastInvokedAt()).toEqual(started);
    expect(task.taskEndedAt()).toEqual(ended);
    expect(task.taskDurationInMilliseconds()).toBe(2500);
    expect(task.maxRetries()).toBe(1);
    expect(task.delayBetweenRetriesInSeconds()).toBe(10);

    const raw = await rawState(c.name, 'full');
    expect(raw.state).toMatchObject({
      status: 'succeeded',
      progress: 0.57,
      statusText: 'halfway',
      checkpoint: { offset: 42 },
      attempt: 2,
      startedAt: started,
      endedAt: ended,
      durationMs: 2500,
      token: 1, // one `edited` transition
    });
    expect(raw.record.input).toEqual({ url: 'https://example.com', list: [1, 2, { deep: true }] });
  });

  it('getTask and getTasks: callback and promise forms, declaration order, null for a missing task', async () => {
    const c = await freshContainer();
    for (const n of ['zeta', 'alpha', 'mid']) await c.addTask(n, null);
    const one = await viaCallback((done) => c.getTask('alpha', done));
    expect(one.sync).toBe(false);
    expect(one.args[0]).toBeNull();
    expect((one.args[1] as CompatTask).name()).toBe('alpha');
    expect((await c.getTask('mid'))?.name()).toBe('mid');
    await expect(c.getTask('nope')).resolves.toBeNull();
    const none = await viaCallback((done) => c.getTask('nope', done));
    expect(none.args).toEqual([null, null]);

    const all = await viaCallback((done) => c.getTasks(done));
    expect((all.args[1] as CompatTask[]).map((t) => t.name())).toEqual(['zeta', 'alpha', 'mid']);
    expect((await c.getTasks()).map((t) => t.name())).toEqual(['zeta', 'alpha', 'mid']);
  });

  it('updateTask: callback and promise forms; state fields become one edited transition', async () => {
    const c = await freshContainer();
    await c.addTask('u', { taskData: 'in' });
    const cb = await viaCallback((done) =>
      c.updateTask('u', { percentageComplete: 25, statusText: 'working', processingData: { page: 3 } }, done),
    );
    expect(cb.sync).toBe(false);
    expect(cb.args[0]).toBeNull();
    const t1 = cb.args[1] as CompatTask;
    expect([t1.percentageComplete(), t1.statusText(), t1.processingData()]).toEqual([25, 'working', { page: 3 }]);
    expect((await rawState(c.name, 'u')).state.token).toBe(1);

    const t2 = await c.updateTask('u', { isComplete: true });
    expect(t2.isComplete()).toBe(true);
    expect(t2.percentageComplete()).toBe(100);
    expect(t2.taskEndedAt()).toBeInstanceOf(Date);
    expect(t2.processingData()).toEqual({ page: 3 }); // untouched fields keep their values
    expect(t2.taskData()).toBe('in');

    // Back to not complete; then failed; then not failed.
    const t3 = await c.updateTask('u', { isComplete: false, percentageComplete: 0 });
    expect([t3.isComplete(), t3.status(), t3.taskEndedAt()]).toEqual([false, 'pending', null]);
    const t4 = await c.updateTask('u', { hasFailed: true, statusText: 'boom' });
    expect([t4.hasFailed(), t4.isComplete(), t4.status()]).toEqual([true, true, 'failed']); // 0.0.1: failed implies complete
    const t5 = await c.updateTask('u', { hasFailed: false });
    expect([t5.hasFailed(), t5.status()]).toEqual([false, 'pending']);
    // A false flag does not touch another status.
    await c.updateTask('u', { isComplete: true });
    expect((await c.updateTask('u', { hasFailed: false })).isComplete()).toBe(true);
    // Without values (callback second): the task, unchanged.
    const token = (await rawState(c.name, 'u')).state.token;
    const unchanged = await viaCallback((done) => c.updateTask('u', done));
    expect((unchanged.args[1] as CompatTask).isComplete()).toBe(true);
    expect((await rawState(c.name, 'u')).state.token).toBe(token);
  });

  it('updateTask changes static fields: taskData, retries, delay, handler, dependsOn', async () => {
    const c = await freshContainer();
    await c.addTask('dep', null);
    await c.addTask('s', { taskData: { v: 1 } });
    const t = await c.updateTask('s', {
      taskData: { v: 2 },
      maxRetries: 0,
      delayBetweenRetriesInSeconds: 1,
      handler: 'worker',
      dependsOn: ['dep'],
    });
    expect(t.taskData()).toEqual({ v: 2 });
    expect(t.maxRetries()).toBe(0);
    expect(t.delayBetweenRetriesInSeconds()).toBe(1);
    expect(t.handler()).toBe('worker');
    expect(t.dependsOn()).toEqual(['dep']);
    // Only retries: the delay is kept.
    expect((await c.updateTask('s', { maxRetries: 7 })).delayBetweenRetriesInSeconds()).toBe(1);
    // taskData can be cleared.
    expect((await c.updateTask('s', { taskData: null })).taskData()).toBeNull();
  });

  it('updateTask renames a task, keeping its state, order and the dependencies on it', async () => {
    const c = await freshContainer();
    await c.addTask('first', null);
    await c.addTask('old', { taskData: 'keep' });
    await c.addTask('after', { dependsOn: ['old'] });
    await c.updateTask('old', { percentageComplete: 40 });
    const renamed = await c.updateTask('old', { name: 'new', statusText: 'renamed' });
    expect(renamed.name()).toBe('new');
    expect(renamed.taskData()).toBe('keep');
    expect(renamed.percentageComplete()).toBe(40);
    expect(renamed.statusText()).toBe('renamed');
    await expect(c.getTask('old')).resolves.toBeNull();
    expect((await c.getTasks()).map((t) => t.name())).toEqual(['first', 'new', 'after']);
    expect((await c.getTask('after'))?.dependsOn()).toEqual(['new']);
    // Renaming onto an existing name is a duplicate.
    await expect(c.updateTask('new', { name: 'first' })).rejects.toBeInstanceOf(DuplicateTaskError);
  });

  it('deleteTask: returns the deleted task, or null when missing (callback and promise)', async () => {
    const c = await freshContainer();
    await c.addTask('x', { taskData: 1 });
    await c.addTask('y', { taskData: 2 });
    const cb = await viaCallback((done) => c.deleteTask('x', done));
    expect(cb.sync).toBe(false);
    expect(cb.args[0]).toBeNull();
    expect((cb.args[1] as CompatTask).taskData()).toBe(1);
    expect((await c.deleteTask('y'))?.name()).toBe('y');
    await expect(c.deleteTask('y')).resolves.toBeNull();
    const none = await viaCallback((done) => c.deleteTask('y', done));
    expect(none.args).toEqual([null, null]);
    await expect(c.getTasks()).resolves.toEqual([]);
  });

  it('getNextTask: leases tasks in order (callback and promise), null when none is ready', async () => {
    const c = await freshContainer();
    await c.addTask('n1', null);
    await c.addTask('n2', null);
    const before = Date.now();
    const cb = await viaCallback((done) => c.getNextTask(done));
    expect(cb.sync).toBe(false);
    expect(cb.args[0]).toBeNull();
    const n1 = cb.args[1] as CompatTask;
    expect(n1.name()).toBe('n1');
    expect(n1.invokeCount()).toBe(1);
    expect(n1.status()).toBe('running');
    expect(n1.lastInvokedAt()!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    // Default lease: 5 minutes.
    expect(n1.leasedTill()!.getTime() - n1.lastInvokedAt()!.getTime()).toBe(5 * 60_000);
    const raw = await rawState(c.name, 'n1');
    expect(raw.state.runnerId).toBe(`compat:${process.pid}`);

    expect((await c.getNextTask())?.name()).toBe('n2');
    await expect(c.getNextTask()).resolves.toBeNull();
    const none = await viaCallback((done) => c.getNextTask(done));
    expect(none.args).toEqual([null, null]);

    // The classic loop: complete what was handed out.
    const done1 = await c.updateTask('n1', { isComplete: true });
    expect(done1.leasedTill()).toBeNull();
    expect(done1.taskDurationInMilliseconds()).toBeGreaterThanOrEqual(0);
  });

  it('getNextTask skips complete and failed tasks', async () => {
    const c = await freshContainer();
    await c.addTask('done', { isComplete: true });
    await c.addTask('broken', { hasFailed: true });
    await c.addTask('todo', null);
    expect((await c.getNextTask())?.name()).toBe('todo');
    await expect(c.getNextTask()).resolves.toBeNull();
  });

  it('isComplete: synchronous from the last read, refreshed by every call; isComplete(cb) reads again', async () => {
    const c = await freshContainer();
    expect(c.isComplete()).toBe(true); // no tasks
    await c.addTask('a', null);
    expect(c.isComplete()).toBe(false);
    await c.updateTask('a', { isComplete: true });
    expect(c.isComplete()).toBe(true);
    await c.addTask('b', null);
    expect(c.isComplete()).toBe(false);

    // Another client completes b: this object only knows after a read.
    const other = (await createClient({ connection: db().connection }).getTaskContainer(c.name))!;
    await other.updateTask('b', { isComplete: true });
    expect(c.isComplete()).toBe(false);
    const cb = await viaCallback((done) => c.isComplete(done));
    expect(cb.sync).toBe(false);
    expect(cb.args).toEqual([null, true]);
    expect(c.isComplete()).toBe(true);

    await other.updateTask('b', { isComplete: false });
    await c.getTasks();
    expect(c.isComplete()).toBe(false);
    await other.updateTask('b', { isComplete: true });
    await c.getTask('b');
    expect(c.isComplete()).toBe(true);
    await other.deleteTask('b');
    await other.deleteTask('a');
    await expect(c.refresh()).resolves.toBe(c);
    expect(c.isComplete()).toBe(true);
  });

  it('keeps the engine container status in line with the tasks', async () => {
    const c = await freshContainer();
    await c.addTask('a', null);
    await c.updateTask('a', { isComplete: true });
    expect((await store.getContainer(c.name))?.status).toBe('succeeded');
    await c.addTask('b', null);
    expect((await store.getContainer(c.name))?.status).toBe('running');
  });
});

describe('persistence', () => {
  it('a new client on a new connection sees the same containers and tasks', async () => {
    const c = await freshContainer('persist');
    const when = new Date('2023-05-06T07:08:09.123Z');
    await c.addTask('p1', { taskData: { nested: { a: [1, 'two', null] } }, maxRetries: 2, delayBetweenRetriesInSeconds: 4 });
    await c.addTask('p2', { dependsOn: ['p1'], handler: 'h' });
    await c.updateTask('p1', {
      percentageComplete: 33.5,
      statusText: 'a third',
      processingData: { cursor: 'abc', when },
      invokeCount: 1,
      lastInvokedAt: when,
      leasedTill: new Date(when.getTime() + 60_000),
    });
    const expected = (await c.getTasks()).map((t) => JSON.stringify(t));

    const connection = mongoose.createConnection(db().uriWithDb);
    try {
      await connection.asPromise();
      const reopened = await createClient({ connection }).getTaskContainer(c.name);
      expect(reopened).not.toBeNull();
      const tasks = await reopened!.getTasks();
      expect(tasks.map((t) => JSON.stringify(t))).toEqual(expected);
      const p1 = tasks[0]!;
      expect(p1.taskData()).toEqual({ nested: { a: [1, 'two', null] } });
      expect(p1.processingData()).toEqual({ cursor: 'abc', when });
      expect(p1.percentageComplete()).toBe(33.5);
      expect(p1.lastInvokedAt()).toEqual(when);
      expect(p1.maxRetries()).toBe(2);
      expect(p1.delayBetweenRetriesInSeconds()).toBe(4);
      expect(tasks[1]!.dependsOn()).toEqual(['p1']);
      expect(tasks[1]!.handler()).toBe('h');
      expect(reopened!.isComplete()).toBe(false);
    } finally {
      await connection.close();
    }
  });

  it('uses separate collections per collectionPrefix', async () => {
    const name = uniqueName('prefixed');
    const prefixed = createClient({ connection: db().connection, collectionPrefix: 'legacy' });
    await (await prefixed.getOrCreateTaskContainer(name)).addTask('t', null);
    await expect(api().getTaskContainer(name)).resolves.toBeNull();
    expect((await (await prefixed.getTaskContainer(name))!.getTasks()).map((t) => t.name())).toEqual(['t']);
    await expect(createClient({ connection: db().connection, collectionPrefix: 'bad-prefix!' }).getTaskContainer(name)).rejects.toThrow(
      /collectionPrefix/,
    );
  });
});

describe('errors', () => {
  it('a duplicate addTask is a DuplicateTaskError (callback and promise) and changes nothing', async () => {
    const c = await freshContainer();
    await c.addTask('dup', { taskData: 'original' });
    const err = await c.addTask('dup', { taskData: 'other' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateTaskError);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as DuplicateTaskError).code).toBe('PTS_DUPLICATE_TASK');
    const cb = await viaCallback((done) => c.addTask('dup', null, done));
    expect(cb.sync).toBe(false);
    expect(cb.args[0]).toBeInstanceOf(DuplicateTaskError);
    expect(cb.args).toHaveLength(1);
    expect((await c.getTask('dup'))?.taskData()).toBe('original');
  });

  it('racing addTask calls of one name: exactly one succeeds', async () => {
    const c = await freshContainer();
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => c.addTask('race', null)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DuplicateTaskError);
  });

  it('updateTask of a missing task is a NotFoundError (callback and promise)', async () => {
    const c = await freshContainer();
    await expect(c.updateTask('ghost', { statusText: 'x' })).rejects.toBeInstanceOf(NotFoundError);
    const cb = await viaCallback((done) => c.updateTask('ghost', { statusText: 'x' }, done));
    expect(cb.args[0]).toBeInstanceOf(NotFoundError);
    expect((cb.args[0] as NotFoundError).code).toBe('PTS_NOT_FOUND');
  });

  it('methods of a deleted container fail with NotFoundError', async () => {
    const c = await freshContainer();
    await api().deleteTaskContainer(c.name);
    await expect(c.addTask('t', null)).rejects.toBeInstanceOf(NotFoundError);
    await expect(c.getTasks()).rejects.toBeInstanceOf(NotFoundError);
    await expect(c.getNextTask()).rejects.toBeInstanceOf(NotFoundError);
  });

  it('bad task names are InvalidNameErrors', async () => {
    const c = await freshContainer();
    for (const bad of ['', '$x', 'a.b', 'nul\u0000', 'x'.repeat(201), ' lead', null, 7]) {
      await expect(c.addTask(bad as string, null)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(c.getTask(bad as string)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(c.updateTask(bad as string, {})).rejects.toBeInstanceOf(InvalidNameError);
      await expect(c.deleteTask(bad as string)).rejects.toBeInstanceOf(InvalidNameError);
    }
    await c.addTask('ok', null);
    await expect(c.updateTask('ok', { name: 'bad.name' })).rejects.toBeInstanceOf(InvalidNameError);
    await expect(c.addTask('d', { dependsOn: ['$no'] })).rejects.toBeInstanceOf(InvalidNameError);
    await expect(c.addTask('h', { handler: '' })).rejects.toBeInstanceOf(InvalidNameError);
    expect((await c.getTasks()).map((t) => t.name())).toEqual(['ok']);
  });

  it('bad values are rejected with an error naming the field, before anything is written', async () => {
    const c = await freshContainer();
    await c.addTask('t', { taskData: { keep: true }, percentageComplete: 10 });
    const token = (await rawState(c.name, 't')).state.token;
    const cases: Array<[unknown, RegExp]> = [
      [{ bogus: 1 }, /"bogus".*not a task field/],
      [{ taskDurationInMilliseconds: -5 }, /"taskDurationInMilliseconds".*>= 0/],
      [{ percentageComplete: 101 }, /"percentageComplete".*between 0 and 100/],
      [{ percentageComplete: -1 }, /"percentageComplete"/],
      [{ percentageComplete: '50' }, /"percentageComplete".*number/],
      [{ percentageComplete: Number.NaN }, /"percentageComplete"/],
      [{ isComplete: 'yes' }, /"isComplete".*boolean/],
      [{ hasFailed: 1 }, /"hasFailed".*boolean/],
      [{ taskData: 42n }, /"taskData".*bigint/],
      [{ taskData: new Map([['a', 1]]) }, /"taskData".*Map/],
      [{ statusText: 5 }, /"statusText".*string/],
      [{ invokeCount: 1.5 }, /"invokeCount".*integer/],
      [{ invokeCount: -1 }, /"invokeCount"/],
      [{ maxRetries: -2 }, /"maxRetries"/],
      [{ delayBetweenRetriesInSeconds: -1 }, /"delayBetweenRetriesInSeconds"/],
      [{ delayBetweenRetriesInSeconds: Infinity }, /"delayBetweenRetriesInSeconds"/],
      [{ lastInvokedAt: 'not a date' }, /"lastInvokedAt".*Date/],
      [{ taskEndedAt: {} }, /"taskEndedAt"/],
      [{ leasedTill: new Date(Number.NaN) }, /"leasedTill"/],
      [{ dependsOn: 'x' }, /"dependsOn".*array/],
      [{ taskData: () => 1 }, /"taskData".*function/],
      [{ taskData: { $set: 1 } }, /"taskData".*\$set/],
      [{ taskData: { 'a.b': 1 } }, /"taskData".*a\.b/],
      [{ processingData: new Set([1]) }, /"processingData".*Set/],
      [{ statusText: 'ok', percentageComplete: 200 }, /"percentageComplete"/],
      ['a string', /"values".*object/],
      [[1, 2], /"values".*object/],
    ];
    for (const [values, message] of cases) {
      const err = await c.updateTask('t', values as never).catch((e: unknown) => e);
      expect(err, String(message)).toBeInstanceOf(InvalidOptionError);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(message);
      // addTask validates the same way, and adds nothing.
      await expect(c.addTask('new', values as never)).rejects.toBeInstanceOf(ValidationError);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(c.updateTask('t', { processingData: cyclic })).rejects.toThrow(/circular/);
    await expect(c.addTask('named', { name: 'other' })).rejects.toThrow(/"name"/);

    const raw = await rawState(c.name, 't');
    expect(raw.state.token).toBe(token);
    expect(raw.record.input).toEqual({ keep: true });
    expect(raw.state.progress).toBe(0.1);
    expect((await c.getTasks()).map((t) => t.name())).toEqual(['t']);
  });

  it('dependencies must exist and must not form a cycle; a task others depend on cannot be deleted', async () => {
    const c = await freshContainer();
    await expect(c.addTask('a', { dependsOn: ['missing'] })).rejects.toBeInstanceOf(UnknownDependencyError);
    await expect(c.addTask('self', { dependsOn: ['self'] })).rejects.toBeInstanceOf(CycleError);
    await c.addTask('a', null);
    await c.addTask('b', { dependsOn: ['a'] });
    await expect(c.updateTask('a', { dependsOn: ['b'] })).rejects.toBeInstanceOf(CycleError);
    await expect(c.deleteTask('a')).rejects.toThrow(/"b" depend on it/);
    await c.updateTask('b', { dependsOn: [] });
    expect((await c.deleteTask('a'))?.name()).toBe('a');
  });
});
