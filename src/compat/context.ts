import { NotFoundError } from '../errors.js';
import type { ContainerSnapshot, TaskSnapshot, TaskStore } from '../store/types.js';

/** What the objects of one compat client share. */
export interface CompatContext {
  /** The client's store, opened on first use. */
  store(): Promise<TaskStore>;
  /** Lease of a task handed out by `getNextTask`. */
  leaseMs: number;
  /** Recorded as the runner of tasks handed out by `getNextTask`. */
  runnerId: string;
}

/** Reads a container, throwing {@link NotFoundError} when it was deleted. */
export async function loadContainer(store: TaskStore, container: string): Promise<ContainerSnapshot> {
  const snapshot = await store.loadSnapshot(container);
  if (!snapshot) throw new NotFoundError('container', container);
  return snapshot;
}

/** One task of a snapshot, or undefined. */
export function findTask(snapshot: ContainerSnapshot, task: string): TaskSnapshot | undefined {
  return snapshot.tasks.find((t) => t.record.name === task);
}
