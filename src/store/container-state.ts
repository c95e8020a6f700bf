import type { ContainerRecord, ContainerStatus, TaskSnapshot } from './types.js';
import { TERMINAL_STATUSES } from './types.js';

/** A container's status as derived from its tasks, and when it finished. */
export interface DerivedContainerState {
  status: ContainerStatus;
  /** The newest end time of its tasks (or the cancel request) once it finished; null while running. */
  finishedAt: Date | null;
  /** Every task the definition declared is present (always true for a container without a definition, once it has a task). */
  complete: boolean;
}

/**
 * Derives a container's status from its tasks, its cancel request and its
 * declared task names. Nothing stored can make it disagree with its tasks:
 * - a cancel request is final: `cancelled` (unless every task had already succeeded);
 * - a container whose declared tasks are not all present is `running` (its
 *   creator may have died between the container record and its tasks); so is
 *   a container of the 0.0.1 API with no task at all;
 * - otherwise `running` while a task is not terminal, then `succeeded` when
 *   every task succeeded, else `failed`.
 */
export function deriveContainerState(container: ContainerRecord, tasks: readonly TaskSnapshot[]): DerivedContainerState {
  const present = new Set(tasks.map((t) => t.record.name));
  const complete = container.definition ? container.definition.every((d) => present.has(d.name)) : tasks.length > 0;
  const allSucceeded = complete && tasks.every((t) => t.state.status === 'succeeded');
  let status: ContainerStatus;
  if (container.cancelRequestedAt) status = allSucceeded ? 'succeeded' : 'cancelled';
  else if (!complete || !tasks.every((t) => TERMINAL_STATUSES.has(t.state.status))) status = 'running';
  else status = allSucceeded ? 'succeeded' : 'failed';
  if (status === 'running') return { status, finishedAt: null, complete };
  let finishedAt = status === 'cancelled' ? container.cancelRequestedAt : null;
  for (const t of tasks) {
    const end = t.state.endedAt;
    if (end && (finishedAt === null || end.getTime() > finishedAt.getTime())) finishedAt = end;
  }
  return { status, finishedAt: finishedAt ?? container.finishedAt ?? container.updatedAt, complete };
}
