import type { ContainerSnapshot, ContainerStatus, PersistedError, TaskStatus } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';

/** One task's state, as shown to people. */
export interface TaskStatusReport {
  name: string;
  status: TaskStatus;
  dependsOn: string[];
  attempt: number;
  /** 0..100 */
  percentComplete: number;
  statusText: string;
  runnerId: string | null;
  leaseUntil: Date | null;
  startedAt: Date | null;
  endedAt: Date | null;
  durationMs: number | null;
  /** When a pending task will be retried. */
  retryAt: Date | null;
  lastError: PersistedError | null;
  reason: string | null;
  dynamic: boolean;
}

/** A container's state, as shown to people; readable from any process. */
export interface ContainerStatusReport {
  name: string;
  status: ContainerStatus;
  /** Finished tasks plus the in-task fractions of running ones, over all tasks; 0..100. */
  percentComplete: number;
  counts: Record<TaskStatus, number>;
  total: number;
  createdAt: Date;
  finishedAt: Date | null;
  cancelRequested: boolean;
  /** Estimated milliseconds left, from the durations observed so far; null before any task finished. */
  etaMs: number | null;
  tasks: TaskStatusReport[];
}

/** Summarises a snapshot: percentages, counts and an ETA. */
export function summarizeContainer(snapshot: ContainerSnapshot): ContainerStatusReport {
  const counts: Record<TaskStatus, number> = { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 };
  let units = 0;
  const durations: number[] = [];
  const tasks = snapshot.tasks.map(({ record, state }): TaskStatusReport => {
    counts[state.status] += 1;
    const fraction = TERMINAL_STATUSES.has(state.status) ? 1 : state.status === 'running' ? state.progress : 0;
    units += fraction;
    if (state.status === 'succeeded' && state.durationMs !== null) durations.push(state.durationMs);
    return {
      name: record.name,
      status: state.status,
      dependsOn: record.dependsOn,
      attempt: state.attempt,
      percentComplete: round1(fraction * 100),
      statusText: state.statusText,
      runnerId: state.status === 'running' ? state.runnerId : null,
      leaseUntil: state.leaseUntil,
      startedAt: state.startedAt,
      endedAt: state.endedAt,
      durationMs: state.durationMs,
      retryAt: state.status === 'pending' ? state.notBefore : null,
      lastError: state.lastError,
      reason: state.reason,
      dynamic: record.dynamic,
    };
  });
  const total = tasks.length;
  const remaining = total - units;
  let etaMs: number | null = null;
  if (remaining <= 0) etaMs = 0;
  else if (durations.length > 0) {
    const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
    // Work left in task-lengths, spread over the tasks running now (at least one).
    etaMs = Math.round((remaining * mean) / Math.max(1, counts.running));
  }
  return {
    name: snapshot.container.name,
    status: snapshot.container.status,
    percentComplete: total === 0 ? 100 : round1((units / total) * 100),
    counts,
    total,
    createdAt: snapshot.container.createdAt,
    finishedAt: snapshot.container.finishedAt,
    cancelRequested: snapshot.container.cancelRequestedAt !== null,
    etaMs,
    tasks,
  };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
