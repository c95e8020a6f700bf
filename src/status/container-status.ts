import { lostRunner, type LostRunner } from '../store/lease-health.js';
import type { ContainerSnapshot, ContainerStatus, PersistedError, TaskState, TaskStatus } from '../store/types.js';
import { estimateRemaining } from './eta.js';
import type { getContainerStatus } from './inspect.js';

/**
 * A running task whose runner is lost, as shown to people. Read through
 * {@link getContainerStatus} from a MongoDB store, liveness is judged on the
 * database server's clock (`judgedBy: 'server-clock'`), so runners on
 * machines whose clocks disagree are judged right; see {@link LostRunner}.
 */
export interface RunnerLostReport extends LostRunner {
  /** Milliseconds until the lease expires and another runner may take over; 0 once expired. */
  expiresInMs: number;
}

/** One task's state, as shown to people. */
export interface TaskStatusReport {
  name: string;
  status: TaskStatus;
  dependsOn: string[];
  attempt: number;
  /**
   * 0..100. Succeeded: 100 (the only status that shows 100). Running: the
   * attempt's progress, starting from its checkpoint's when it resumed.
   * Failed or cancelled: the last progress reported. Pending: what the next
   * attempt resumes from (its checkpoint's progress, else 0). Skipped: 0, or
   * the last progress if it had run.
   */
  percentComplete: number;
  /** What the running attempt says it is doing; empty once the task is no longer running. */
  statusText: string;
  /** The last status text any attempt reported (kept after the task ended, for reference). */
  lastStatusText: string;
  runnerId: string | null;
  /** The lease's end as its holder wrote it, on the holder's wall clock (display only; see {@link RunnerLostReport}). */
  leaseUntil: Date | null;
  /**
   * Set while the task's runner stopped renewing its lease (more than two
   * heartbeats missed, or its lease expired) and nobody has taken the task
   * over yet.
   */
  runnerLost: RunnerLostReport | null;
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
  /**
   * Mean of the tasks' fractions (see {@link TaskStatusReport.percentComplete}); 0..100.
   * 100 only when every task succeeded, so a failed container never shows 100.
   */
  percentComplete: number;
  counts: Record<TaskStatus, number>;
  /** Running tasks whose runner is lost (they are also counted as running). */
  runnersLost: number;
  total: number;
  createdAt: Date;
  finishedAt: Date | null;
  cancelRequested: boolean;
  /**
   * Estimated milliseconds left (see {@link estimateRemaining}): 0 once the
   * container finished; null while no task has finished or reported progress.
   */
  etaMs: number | null;
  tasks: TaskStatusReport[];
}

/** Below 100 %, at most this is shown, so that only a succeeded task (or container) shows 100 %. */
const NOT_DONE_MAX = 99.9;

/**
 * Summarises a snapshot (as of `snapshot.readAt`): percentages, counts, lost
 * runners and an ETA. Lost runners are judged on the server's clock when the
 * snapshot carries `serverReadAt` (as {@link getContainerStatus} reads it),
 * else by `observed` (the snapshot as a `LeaseObserver` judged it over
 * successive reads) when given, else by comparing written expiries with
 * `readAt` (see {@link lostRunner}).
 */
export function summarizeContainer(snapshot: ContainerSnapshot, observed?: ContainerSnapshot): ContainerStatusReport {
  const counts: Record<TaskStatus, number> = { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 };
  let units = 0;
  let runnersLost = 0;
  const now = snapshot.readAt;
  const observedState = new Map(observed?.tasks.map((t) => [t.record.name, t.state]));
  const tasks = snapshot.tasks.map(({ record, state }): TaskStatusReport => {
    counts[state.status] += 1;
    const fraction = taskFraction(state);
    units += fraction;
    const lost = lostRunner(state, now, snapshot.serverReadAt ?? null, observedState.get(record.name));
    if (lost) runnersLost += 1;
    const running = state.status === 'running';
    return {
      name: record.name,
      status: state.status,
      dependsOn: record.dependsOn,
      attempt: state.attempt,
      percentComplete: percent(fraction, state.status === 'succeeded'),
      statusText: running ? state.statusText : '',
      lastStatusText: state.statusText,
      runnerId: running ? state.runnerId : null,
      leaseUntil: state.leaseUntil,
      runnerLost: lost,
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
  const allSucceeded = counts.succeeded === total;
  const finished = snapshot.container.status !== 'running';
  return {
    name: snapshot.container.name,
    status: snapshot.container.status,
    percentComplete: total === 0 ? (finished ? 100 : 0) : percent(units / total, allSucceeded),
    counts,
    runnersLost,
    total,
    createdAt: snapshot.container.createdAt,
    finishedAt: snapshot.container.finishedAt,
    cancelRequested: snapshot.container.cancelRequestedAt !== null,
    etaMs: finished ? 0 : (estimateRemaining(snapshot)?.etaMs ?? null),
    tasks,
  };
}

/** A task's share of its work done, 0..1 (see {@link TaskStatusReport.percentComplete}). */
function taskFraction(s: TaskState): number {
  if (s.status === 'succeeded') return 1;
  if (s.status === 'pending') return s.checkpoint === undefined || s.checkpoint === null ? 0 : s.checkpointProgress;
  return s.progress;
}

function percent(fraction: number, done: boolean): number {
  if (done) return 100;
  return Math.min(NOT_DONE_MAX, Math.round(fraction * 1000) / 10);
}
