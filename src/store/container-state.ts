import type { ContainerRecord, ContainerStatus, TaskSnapshot } from './types.js';
import { TERMINAL_STATUSES } from './types.js';
import type { TimeSlice } from '../time-slice.js';

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
  const tally = new Tally();
  for (const t of tasks) tally.add(t);
  return tally.derive(container);
}

/**
 * {@link deriveContainerState}, with the event loop let through whenever
 * `slice` has used its time: for a large container's tasks (100k take tens
 * of ms).
 */
export async function deriveContainerStateSliced(container: ContainerRecord, tasks: readonly TaskSnapshot[], slice: TimeSlice): Promise<DerivedContainerState> {
  const tally = new Tally();
  for (const t of tasks) {
    tally.add(t);
    if (slice.due()) await slice.yield();
  }
  if (container.definition) {
    for (const d of container.definition) {
      if (!tally.present.has(d.name)) return tally.derive(container, false);
      if (slice.due()) await slice.yield();
    }
  }
  return tally.derive(container, true);
}

/** What {@link deriveContainerState} needs of the tasks, taken in one by one. */
class Tally {
  readonly present = new Set<string>();
  count = 0;
  allSucceeded = true;
  allTerminal = true;
  latestEnd: Date | null = null;

  add(t: TaskSnapshot): void {
    this.present.add(t.record.name);
    this.count += 1;
    const status = t.state.status;
    if (status !== 'succeeded') this.allSucceeded = false;
    if (!TERMINAL_STATUSES.has(status)) this.allTerminal = false;
    const end = t.state.endedAt;
    if (end && (this.latestEnd === null || end.getTime() > this.latestEnd.getTime())) this.latestEnd = end;
  }

  /** `declaredPresent`: every declared name is present, when already checked. */
  derive(container: ContainerRecord, declaredPresent?: boolean): DerivedContainerState {
    const complete = container.definition
      ? (declaredPresent ?? container.definition.every((d) => this.present.has(d.name)))
      : this.count > 0;
    const allSucceeded = complete && this.allSucceeded;
    let status: ContainerStatus;
    if (container.cancelRequestedAt) status = allSucceeded ? 'succeeded' : 'cancelled';
    else if (!complete || !this.allTerminal) status = 'running';
    else status = allSucceeded ? 'succeeded' : 'failed';
    if (status === 'running') return { status, finishedAt: null, complete };
    let finishedAt = status === 'cancelled' ? container.cancelRequestedAt : null;
    const end = this.latestEnd;
    if (end && (finishedAt === null || end.getTime() > finishedAt.getTime())) finishedAt = end;
    return { status, finishedAt: finishedAt ?? container.finishedAt ?? container.updatedAt, complete };
  }
}
