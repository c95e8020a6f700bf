import { SafeEvents } from '../safe-events.js';
import type { ProgressCounts } from '../definition/types.js';
import type { ContainerStatus, PersistedError } from '../store/types.js';

/** Every event a runner emits, each with one payload object. */
export interface RunnerEventMap {
  /** `database`: the MongoDB database the runner uses (undefined with a custom store). */
  'container:started': { container: string; runnerId: string; resumed: boolean; database: string | undefined };
  /**
   * The definition changed options, inputs or handlers of tasks since the
   * container was persisted (or its `failFast`); the changes were applied to
   * every task that was not running, one sentence each in `changes`.
   */
  'container:definition-changed': { container: string; runnerId: string; changes: string[] };
  'container:completed': { container: string; runnerId: string; status: ContainerStatus; durationMs: number };
  'task:started': { container: string; task: string; attempt: number; runnerId: string; recovered: boolean };
  /** `counts`: bytes and rows done so far in this attempt, when the handler passed them to `ctx.progress`. */
  'task:progress': { container: string; task: string; attempt: number; fraction: number; statusText: string; counts?: ProgressCounts };
  'task:retry': { container: string; task: string; attempt: number; error: PersistedError; retryAt: Date; delayMs: number };
  'task:succeeded': { container: string; task: string; attempt: number; durationMs: number; output: unknown };
  'task:failed': { container: string; task: string; attempt: number; error: PersistedError };
  'task:skipped': { container: string; task: string; reason: string };
  'task:cancelled': { container: string; task: string; attempt: number | null; reason: string };
  'task:released': { container: string; task: string; attempt: number };
  'task:lease-lost': { container: string; task: string; attempt: number; fencingToken: number };
  /**
   * Another writer took the log position this runner's claim asked for (a
   * runner claimed the task first, or it was settled): this runner learnt the
   * entry there (`holder`: the runner that claimed it, null for another kind
   * of entry) and moves on to other tasks. Runners that share a container
   * lose a few claims where their sweeps meet and at the end of a run.
   */
  'task:claim-lost': { container: string; task: string; runnerId: string; holder: string | null };
  /**
   * The runner holding this task stopped renewing its lease (it died or froze):
   * this runner takes the task over at `takeoverAt` unless the lease is renewed.
   * Emitted once per lease (per claim of the task), by every runner that waits.
   */
  'task:waiting-for-lease': {
    container: string;
    task: string;
    attempt: number;
    holder: string;
    /** The expiry the holder wrote (its own clock; for display, as `pts status` shows it). */
    expiresAt: Date;
    /**
     * When this runner will take the task over unless the lease changes: once
     * it has seen the lease unchanged for `leaseMs` of its own monotonic time,
     * whatever the wall clocks say (given on this runner's wall clock).
     */
    takeoverAt: Date;
  };
  /**
   * This runner claimed a task of an affinity key held by another runner
   * (`from`), judged gone: it gave its last task of the key back, or showed
   * no running task for `waitedMs` (see `RunnerOptions.affinityWaitMs`). The
   * handler runs here without what `from` kept locally.
   */
  'task:affinity-takeover': { container: string; task: string; attempt: number; key: string; from: string; waitedMs: number };
  /**
   * This runner's event loop stood still for `delayMs` while attempts ran:
   * long enough for a lease to lapse (over `leaseMs` minus the fence's margin
   * and one heartbeat interval). Each running attempt checked its lease at
   * once; those whose lease could no longer be proven were fenced off. A
   * handler doing synchronous work this long belongs off the main thread
   * (`runInWorker`).
   */
  'runner:loop-blocked': { container: string; runnerId: string; delayMs: number; leaseMs: number; running: string[] };
  /** Something went wrong outside a handler: a throwing listener, a failed store write. */
  'runner:error': { error: Error; context: string };
}

/** Names of the events in {@link RunnerEventMap}. */
export type RunnerEventName = keyof RunnerEventMap;

/**
 * The typed emitter of runner events; `emit` never throws (see {@link SafeEvents}).
 */
export class RunnerEvents extends SafeEvents<RunnerEventMap, 'runner:error'> {
  constructor() {
    super('runner:error', 'persistent-task-status');
  }
}
