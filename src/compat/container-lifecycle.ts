import { containerOutcome } from '../engine/plan.js';
import type { ContainerSnapshot, TaskStore } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';

/**
 * Keeps the container's own status in line with its tasks after a change made
 * through the 0.0.1 API, so engine runners and `getContainerStatus` agree with
 * it: a finished container that got work again is reopened, and a running one
 * whose tasks all ended is finished (as a runner would). Returns the snapshot
 * to show, re-read when the container changed.
 */
export async function syncContainerStatus(store: TaskStore, snapshot: ContainerSnapshot): Promise<ContainerSnapshot> {
  const { container, tasks } = snapshot;
  const allEnded = tasks.length > 0 && tasks.every((t) => TERMINAL_STATUSES.has(t.state.status));
  if (container.status !== 'running' && !allEnded && tasks.length > 0) {
    await store.reopenContainer(container.name);
  } else if (container.status === 'running' && allEnded && !container.cancelRequestedAt) {
    await store.finishContainer(container.name, containerOutcome(snapshot));
  } else {
    return snapshot;
  }
  return (await store.loadSnapshot(container.name)) ?? snapshot;
}
