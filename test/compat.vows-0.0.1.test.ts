/**
 * The vows specs of persistent-task-status 0.0.1 (spec/task-spec.coffee,
 * spec/integration_task-spec.coffee, spec/integration_task_container-spec.coffee
 * at commit f13f80f of work-in-progress/node-persistent-task-status), restated:
 * the same facts, asserted through the callback API against the test server.
 * Where 0.0.1 wrote `Date(3001)` (which is "now" as a string, a bug of the
 * spec), real Dates are used. Then the 0.0.1 behaviours the issue asked for:
 * caller-set timing fields, `{ isComplete: true, hasFailed: true }`, and
 * `getNextTask(name, cb)`.
 */
import { describe, expect, it } from 'vitest';
import { defineContainer, NotFoundError, Runner, type CompatContainer, type CompatTask } from '../src/index.js';
import { compatClientPerFile, uniqueName, viaCallback } from './support/compat.js';

const { db, api } = compatClientPerFile();

/** Calls a callback method and returns `[err, result, ...]`. */
async function cb(invoke: (done: (...args: unknown[]) => void) => unknown): Promise<unknown[]> {
  return (await viaCallback(invoke)).args;
}

describe('spec/task-spec.coffee: a new task', () => {
  it('has the 0.0.1 defaults', async () => {
    const c = await api().getOrCreateTaskContainer(uniqueName('defaults'));
    const [err, task] = (await cb((done) => c.addTask('fresh', null, done))) as [Error | null, CompatTask];
    expect(err).toBeNull();
    expect(task.isComplete()).toBe(false);
    expect(task.hasFailed()).toBe(false);
    expect(task.percentageComplete()).toBe(0);
    expect(task.statusText()).toBe('');
    expect(task.invokeCount()).toBe(0);
    expect(task.taskDurationInMilliseconds()).toBeNull();
    expect(task.maxRetries()).toBe(3);
    expect(task.delayBetweenRetriesInSeconds()).toBe(30);
    expect(task.taskData()).toBeNull();
    expect(task.processingData()).toBeNull();
    expect(task.lastInvokedAt()).toBeNull();
    expect(task.taskEndedAt()).toBeNull();
    expect(task.leasedTill()).toBeNull();
  });
});

describe('spec/integration_task_container-spec.coffee', () => {
  it('get, create, find, delete a container; an empty container is complete', async () => {
    const name = uniqueName('freshfugu:epf:20110930');
    expect(await cb((done) => api().getTaskContainer(name, done))).toEqual([null, null]);
    const [err, created] = (await cb((done) => api().getOrCreateTaskContainer(name, done))) as [null, CompatContainer];
    expect(err).toBeNull();
    expect(created).not.toBeNull();
    expect(created.name).toBe(name); // a string property in 0.0.1
    expect(created.isComplete()).toBe(true); // "marked as isCompleted because no task exist"
    const [, found] = await cb((done) => api().getTaskContainer(name, done));
    expect(found).not.toBeNull();
    // Deleting a missing container changes nothing.
    await cb((done) => api().deleteTaskContainer('Dummy', done));
    expect((await cb((done) => api().getTaskContainer(name, done)))[1]).not.toBeNull();
    expect(await cb((done) => api().deleteTaskContainer(name, done))).toEqual([null, name]);
    expect(await cb((done) => api().getTaskContainer(name, done))).toEqual([null, null]);
  });
});

describe('spec/integration_task-spec.coffee', () => {
  it('runs the 0.0.1 task scenario batch by batch', async () => {
    const name = uniqueName('freshfugu:epf:20110930');
    const client = api();
    const container = async () => (await client.getOrCreateTaskContainer(name)) as CompatContainer;

    // A container without tasks: getTasks gives an empty array.
    expect(await cb(async (done) => (await container()).getTasks(done))).toEqual([null, []]);

    // Adding a task: its name, and the container is no longer complete.
    const c1 = await container();
    const [addErr, added] = (await cb((done) => c1.addTask('task2', null, done))) as [null, CompatTask];
    expect(addErr).toBeNull();
    expect(added.name()).toBe('task2');
    expect(c1.isComplete()).toBe(false);

    // Retrieving it, and a missing one (null, no error).
    const [, got] = (await cb(async (done) => (await container()).getTask('task2', done))) as [null, CompatTask];
    expect(got.name()).toBe('task2');
    expect(await cb(async (done) => (await container()).getTask('somenonexistantname', done))).toEqual([null, null]);
    const [, one] = (await cb(async (done) => (await container()).getTasks(done))) as [null, CompatTask[]];
    expect(one.map((t) => t.name())).toEqual(['task2']);

    // Renaming a missing task fails; renaming an existing one works.
    const [missingErr] = await cb(async (done) => (await container()).updateTask('blah', { name: 'task1' }, done));
    expect(missingErr).toBeInstanceOf(Error);
    const [renameErr, renamed] = (await cb(async (done) =>
      (await container()).updateTask('task2', { name: 'task1' }, done),
    )) as [null, CompatTask];
    expect(renameErr).toBeNull();
    expect(renamed.name()).toBe('task1');

    // Renaming back and setting every other field at once, failure included.
    const lastInvokedAt = new Date(3001);
    const taskEndedAt = new Date(4002);
    const leasedTill = new Date(5003);
    const c2 = await container();
    const [updErr, updated] = (await cb((done) =>
      c2.updateTask(
        'task1',
        {
          name: 'task2',
          isComplete: true,
          percentageComplete: 65,
          statusText: 'Status TEXT',
          taskData: { foo: 'bar' },
          processingData: { hello: 'world' },
          invokeCount: 2,
          taskDurationInMilliseconds: 3291,
          maxRetries: 67,
          delayBetweenRetriesInSeconds: 19,
          hasFailed: true,
          lastInvokedAt,
          taskEndedAt,
          leasedTill,
        },
        done,
      ),
    )) as [null, CompatTask];
    expect(updErr).toBeNull();
    const expectAll = (t: CompatTask) => {
      expect(t.name()).toBe('task2');
      expect(t.isComplete()).toBe(true);
      expect(t.hasFailed()).toBe(true);
      expect(t.percentageComplete()).toBe(65);
      expect(t.statusText()).toBe('Status TEXT');
      expect(t.invokeCount()).toBe(2);
      expect(t.taskDurationInMilliseconds()).toBe(3291);
      expect(t.maxRetries()).toBe(67);
      expect(t.delayBetweenRetriesInSeconds()).toBe(19);
      expect(t.taskData()).toEqual({ foo: 'bar' });
      expect(t.processingData()).toEqual({ hello: 'world' });
      expect(t.lastInvokedAt()).toEqual(lastInvokedAt);
      expect(t.taskEndedAt()).toEqual(taskEndedAt);
      expect(t.leasedTill()).toEqual(leasedTill);
    };
    expectAll(updated);
    expect(c2.isComplete()).toBe(true); // every task is complete (this one failed)

    // Reloaded through a new container object: the same values.
    const c3 = await container();
    const [, reloaded] = (await cb((done) => c3.getTask('task2', done))) as [null, CompatTask];
    expectAll(reloaded);
    expect(c3.isComplete()).toBe(true);

    // Deleting it returns it (still readable); then the container is empty.
    const [delErr, deleted] = (await cb((done) => c3.deleteTask('task2', done))) as [null, CompatTask];
    expect(delErr).toBeNull();
    expect(deleted).not.toBeNull();
    expect(deleted.name()).toBe('task2');
    expect(deleted.statusText()).toBe('Status TEXT');
    expect(c3.isComplete()).toBe(true);
    expect(await cb(async (done) => (await container()).getTasks(done))).toEqual([null, []]);
    expect(await cb(async (done) => (await container()).deleteTask('somename', done))).toEqual([null, null]);
  });
});

describe('0.0.1 fields the caller sets', () => {
  it('addTask stores taskDurationInMilliseconds and leasedTill as given; later edits keep them', async () => {
    const c = await api().getOrCreateTaskContainer(uniqueName('given'));
    const leasedTill = new Date(Date.now() + 3_600_000);
    const t = await c.addTask('t', { taskDurationInMilliseconds: 1234, leasedTill, invokeCount: 4 });
    expect([t.taskDurationInMilliseconds(), t.leasedTill(), t.invokeCount()]).toEqual([1234, leasedTill, 4]);
    const after = await c.updateTask('t', { statusText: 'still there', percentageComplete: 10 });
    expect([after.taskDurationInMilliseconds(), after.leasedTill()]).toEqual([1234, leasedTill]);
    // Setting it to null clears it.
    expect((await c.updateTask('t', { taskDurationInMilliseconds: null })).taskDurationInMilliseconds()).toBeNull();
  });

  it('the engine writes its own values when it runs the task', async () => {
    const name = uniqueName('engine-wins');
    const c = await api().getOrCreateTaskContainer(name);
    await c.addTask('work', { taskDurationInMilliseconds: 999_999, invokeCount: 7, lastInvokedAt: new Date(1000) });
    const before = Date.now();
    const runner = await Runner.create({ connection: db().connection, container: name, handlers: { work: async () => 'ok' }, pollMs: 50 });
    expect((await runner.run()).status).toBe('succeeded');
    const t = (await c.getTask('work'))!;
    expect(t.invokeCount()).toBe(8); // continues from the count given
    expect(t.lastInvokedAt()!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(t.taskDurationInMilliseconds()).toBe(t.taskEndedAt()!.getTime() - t.lastInvokedAt()!.getTime());
    expect(t.taskDurationInMilliseconds()).toBeLessThan(999_999);
    expect(t.leasedTill()).toBeNull();
  });

  it('{ isComplete: true, hasFailed: true } records a failure; isComplete: false revives it', async () => {
    const c = await api().getOrCreateTaskContainer(uniqueName('failure'));
    await c.addTask('a', null);
    const failed = await c.updateTask('a', { isComplete: true, hasFailed: true, statusText: 'gave up' });
    expect([failed.status(), failed.isComplete(), failed.hasFailed()]).toEqual(['failed', true, true]);
    expect(c.isComplete()).toBe(true);
    await expect(c.getNextTask()).resolves.toBeNull(); // a failed task is not handed out
    const added = await c.addTask('b', { isComplete: true, hasFailed: true });
    expect(added.status()).toBe('failed');
    const revived = await c.updateTask('a', { isComplete: false });
    expect([revived.status(), revived.isComplete(), revived.hasFailed()]).toEqual(['pending', false, false]);
  });
});

describe('getNextTask(name, cb) and getNextTask(cb)', () => {
  it('with a name: leases that task when it is ready, null otherwise, NotFoundError when missing', async () => {
    const c = await api().getOrCreateTaskContainer(uniqueName('next-named'));
    await c.addTask('first', null);
    await c.addTask('second', null);
    await c.addTask('blocked', { dependsOn: ['first'] });
    const [err, second] = (await cb((done) => c.getNextTask('second', done))) as [null, CompatTask];
    expect(err).toBeNull();
    expect([second.name(), second.status()]).toEqual(['second', 'running']);
    expect(await cb((done) => c.getNextTask('second', done))).toEqual([null, null]); // leased already
    expect(await cb((done) => c.getNextTask('blocked', done))).toEqual([null, null]); // dependency not done
    const [missing] = await cb((done) => c.getNextTask('ghost', done));
    expect(missing).toBeInstanceOf(NotFoundError);
    // Without a name (and with a null one): the next ready task.
    expect(((await cb((done) => c.getNextTask(done)))[1] as CompatTask).name()).toBe('first');
    await c.updateTask('first', { isComplete: true });
    expect(((await cb((done) => c.getNextTask(null, done)))[1] as CompatTask).name()).toBe('blocked');
    await expect(c.getNextTask()).resolves.toBeNull();
  });

  it('a container the engine declared can be taken task by task by name', async () => {
    const name = uniqueName('declared');
    const def = defineContainer(name).task('x', async () => 1);
    await Runner.create({ connection: db().connection, container: def });
    const c = (await api().getTaskContainer(name))!;
    expect((await c.getNextTask('x'))?.name()).toBe('x');
  });
});
