import { NotFoundError } from '../errors.js';
import type { ContainerFields, ContainerSnapshot, TaskRead, TaskSnapshot, TaskStore } from '../store/types.js';
import { syncContainerStatus } from './container-lifecycle.js';
import { loadContainer } from './context.js';

/**
 * What a 0.0.1 call read back, for the container object to refresh its
 * cache: one task (the calls on one task, a fixed number of commands), or
 * the whole container (the calls that need every task).
 */
export type CompatRead =
  | {
      all: ContainerSnapshot;
      /** The task the call was about. */
      name: string;
    }
  | {
      container: ContainerFields;
      /** The task read. */
      name: string;
      /** It, or null when it is not there (any more). */
      task: TaskSnapshot | null;
      /** A name the task no longer has (after a rename): drop it from the cache. */
      gone?: string;
    };

/** Reads one task; throws {@link NotFoundError} when the container was deleted. */
export async function readTask(store: TaskStore, container: string, name: string): Promise<TaskRead> {
  const read = await store.loadTask(container, name);
  if (!read) throw new NotFoundError('container', container);
  return read;
}

/**
 * After a 0.0.1 change to one task: reads it back. A container with a cancel
 * request is reopened when work is there again, as {@link syncContainerStatus}
 * does: at once when this task is pending; otherwise only another task can
 * be, and that takes reading them all (only ever in a cancelled container).
 */
export async function readBack(store: TaskStore, container: string, name: string, gone?: string): Promise<CompatRead> {
  const read = await readTask(store, container, name);
  const one = { container: read.container, name, task: read.task, ...(gone === undefined ? {} : { gone }) };
  if (!read.container.cancelRequestedAt) return one;
  if (read.task?.state.status === 'pending') {
    await store.reopenContainer(container);
    const again = await readTask(store, container, name);
    return { ...one, container: again.container, task: again.task };
  }
  return { all: await syncContainerStatus(store, await loadContainer(store, container)), name };
}

/**
 * After a 0.0.1 delete of one task: the deleted task is gone from the cache;
 * a cancelled container is synced as {@link readBack} does (reading every
 * task, since only others can be pending). One command otherwise.
 */
export async function readBackDeleted(store: TaskStore, container: string, name: string): Promise<CompatRead> {
  const read = await store.loadTaskRecords(container, []);
  if (!read) throw new NotFoundError('container', container);
  if (!read.container.cancelRequestedAt) return { container: read.container, name, task: null };
  return { all: await syncContainerStatus(store, await loadContainer(store, container)), name };
}
