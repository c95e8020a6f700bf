import { assertSafeName } from '../definition/names.js';
import { ValidationError } from '../errors.js';
import type { ContainerSnapshot, TaskSnapshot, TaskStore } from '../store/types.js';
import { syncContainerStatus } from './container-lifecycle.js';
import { findTask, loadContainer } from './context.js';

/**
 * `deleteTask`: deletes the task with its history and returns it as it was
 * (null when it did not exist). A task that others depend on is not deleted:
 * they could never become ready; change their `dependsOn` first.
 */
export async function deleteCompatTask(
  store: TaskStore,
  container: string,
  name: unknown,
): Promise<{ deleted: TaskSnapshot | null; snapshot: ContainerSnapshot }> {
  assertSafeName('task', name);
  const before = await loadContainer(store, container);
  const task = findTask(before, name);
  if (!task) return { deleted: null, snapshot: before };
  const dependents = before.tasks.filter((t) => t.record.dependsOn.includes(name)).map((t) => t.record.name);
  if (dependents.length > 0) {
    throw new ValidationError(
      `Task "${name}" cannot be deleted: ${dependents.map((d) => `"${d}"`).join(', ')} depend on it; change their dependsOn first`,
      'PTS_HAS_DEPENDENTS',
    );
  }
  const deleted = await store.deleteTask(container, name);
  return { deleted: deleted ? task : null, snapshot: await syncContainerStatus(store, await loadContainer(store, container)) };
}
