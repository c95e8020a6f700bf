import type { ContainerSnapshot, TaskStore } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';

/**
 * After a change made through the 0.0.1 API: a cancelled container that got
 * work again (a task made pending by hand) is reopened, so runners and
 * `getNextTask` pick it up. Every other status is derived from the tasks when
 * read, so nothing else needs writing. Returns the snapshot to show, re-read
 * when the container changed.
 */
export async function syncContainerStatus(store: TaskStore, snapshot: ContainerSnapshot): Promise<ContainerSnapshot> {
  const { container, tasks } = snapshot;
  const allEnded = tasks.every((t) => TERMINAL_STATUSES.has(t.state.status));
  if (!container.cancelRequestedAt || allEnded || tasks.length === 0) return snapshot;
  await store.reopenContainer(container.name);
  return (await store.loadSnapshot(container.name)) ?? snapshot;
}
