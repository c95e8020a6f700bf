import { assertSafeName } from '../definition/names.js';
import { DuplicateTaskError, InvalidOptionError } from '../errors.js';
import { initialTaskState } from '../store/fold.js';
import type { ContainerSnapshot, TaskStore } from '../store/types.js';
import { syncContainerStatus } from './container-lifecycle.js';
import { findTask, loadContainer } from './context.js';
import { editTaskState } from './edit-state.js';
import { assertCompatDependencies, newCompatTask } from './task-record.js';
import { parseTaskValues } from './values.js';

/**
 * `addTask`: validates everything first, inserts the task record (its unique
 * key makes a racing duplicate fail), then writes any state fields as one
 * `edited` transition. Returns the container as read afterwards.
 */
export async function addCompatTask(
  store: TaskStore,
  container: string,
  name: unknown,
  values: unknown,
): Promise<ContainerSnapshot> {
  assertSafeName('task', name);
  const parsed = parseTaskValues(values);
  if (parsed.record.name !== undefined && parsed.record.name !== name) {
    throw new InvalidOptionError('name', `must equal the task name "${name}" in addTask (use updateTask to rename)`);
  }
  const before = await loadContainer(store, container);
  if (findTask(before, name)) throw new DuplicateTaskError(name, container);
  const task = newCompatTask(name, parsed.record);
  assertCompatDependencies(task, before.tasks.map((t) => t.record));
  const added = await store.addTasks(container, [task]);
  if (added.length === 0) throw new DuplicateTaskError(name, container);
  if (parsed.hasState) await editTaskState(store, container, name, parsed.state, initialTaskState());
  return syncContainerStatus(store, await loadContainer(store, container));
}
