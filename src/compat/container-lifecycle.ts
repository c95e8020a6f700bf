import type { ContainerSnapshot, TaskStore } from '../store/types.js';

/**
 * After a change made through the 0.0.1 API: a cancelled container that got
 * work again (a task added, or made pending by hand) is reopened, so runners
 * and `getNextTask` pick it up. Tasks still running when the cancel came (its
 * runner may be dead) do not reopen it: a cancel is final until work is
 * given again. Every status is derived from the tasks when read, so nothing
 * else needs writing. Returns the snapshot to show, re-read when it changed.
 */
export async function syncContainerStatus(store: TaskStore, snapshot: ContainerSnapshot): Promise<ContainerSnapshot> {
  const { container, tasks } = snapshot;
  if (!container.cancelRequestedAt || !tasks.some((t) => t.state.status === 'pending')) return snapshot;
  await store.reopenContainer(container.name);
  return (await store.loadSnapshot(container.name)) ?? snapshot;
}
