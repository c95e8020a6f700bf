import { assertSafeName } from '../definition/names.js';
import { ValidationError } from '../errors.js';
import type { TaskSnapshot, TaskStore } from '../store/types.js';
import { readBackDeleted, readTask, type CompatRead } from './task-reads.js';

/**
 * `deleteTask`: deletes the task with its history and returns it as it was
 * (null when it did not exist). A task that others depend on is not deleted
 * ({@link ValidationError} `PTS_HAS_DEPENDENTS`): they could never become
 * ready; change their `dependsOn` first. Reads the task and its dependents
 * only: a fixed number of commands whatever the container's size. Throws
 * `NotFoundError` when the container does not exist.
 */
export async function deleteCompatTask(
  store: TaskStore,
  container: string,
  name: unknown,
): Promise<{ deleted: TaskSnapshot | null; read: CompatRead }> {
  assertSafeName('task', name);
  const before = await readTask(store, container, name);
  const task = before.task;
  if (!task) return { deleted: null, read: { container: before.container, name, task: null } };
  const dependents = (await store.loadDependents(container, name)).map((t) => t.name);
  if (dependents.length > 0) {
    throw new ValidationError(
      `Task "${name}" cannot be deleted: ${dependents.map((d) => `"${d}"`).join(', ')} depend on it; change their dependsOn first`,
      'PTS_HAS_DEPENDENTS',
    );
  }
  const deleted = await store.deleteTask(container, name);
  return { deleted: deleted ? task : null, read: await readBackDeleted(store, container, name) };
}
