import { assertSafeName } from '../definition/names.js';
import { CycleError, DuplicateTaskError, InvalidOptionError, NotFoundError, UnknownDependencyError } from '../errors.js';
import { initialTaskState } from '../store/fold.js';
import type { NewTask, TaskStore } from '../store/types.js';
import { loadContainer } from './context.js';
import { editTaskState } from './edit-state.js';
import { readBack, type CompatRead } from './task-reads.js';
import { assertCompatDependencies, newCompatTask } from './task-record.js';
import { parseTaskValues } from './values.js';

/**
 * `addTask`: validates everything first, inserts the task record (its unique
 * key makes a racing duplicate fail), then writes any state fields as one
 * `edited` transition. Returns the task as read afterwards. A fixed number
 * of commands whatever the container's size (see {@link assertCanAdd}).
 */
export async function addCompatTask(store: TaskStore, container: string, name: unknown, values: unknown): Promise<CompatRead> {
  assertSafeName('task', name);
  const parsed = parseTaskValues(values);
  if (parsed.record.name !== undefined && parsed.record.name !== name) {
    throw new InvalidOptionError('name', `must equal the task name "${name}" in addTask (use updateTask to rename)`);
  }
  const task = await assertCanAdd(store, container, name, () => newCompatTask(name, parsed.record), parsed.record.dependsOn ?? []);
  const added = await store.addTasks(container, [task]);
  if (added.length === 0) throw new DuplicateTaskError(name, container);
  if (parsed.hasState) await editTaskState(store, container, name, parsed.state, initialTaskState());
  return readBack(store, container, name);
}

/**
 * Checks that the container exists ({@link NotFoundError}), the name is free
 * ({@link DuplicateTaskError}) and every dependency exists
 * ({@link UnknownDependencyError}; itself: {@link CycleError}), by reading
 * only those names. A new task can close a cycle only when tasks already
 * depend on its name (left pointing at a deleted task): then, and only then,
 * the whole container is read to check the graph as before. Returns the task.
 */
async function assertCanAdd(
  store: TaskStore,
  container: string,
  name: string,
  make: () => NewTask,
  dependsOn: readonly string[],
): Promise<NewTask> {
  const read = await store.loadTaskRecords(container, [name, ...dependsOn]);
  if (!read) throw new NotFoundError('container', container);
  const existing = new Set(read.records.map((r) => r.name));
  if (existing.has(name)) throw new DuplicateTaskError(name, container);
  const task = make();
  for (const dep of task.dependsOn) {
    if (dep === task.name) throw new CycleError([task.name, task.name]);
    if (!existing.has(dep)) throw new UnknownDependencyError(task.name, dep);
  }
  if (task.dependsOn.length > 0 && (await store.loadDependents(container, name)).length > 0) {
    const all = await loadContainer(store, container);
    assertCompatDependencies(task, all.tasks.map((t) => t.record));
  }
  return task;
}
