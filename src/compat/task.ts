import type { TaskRecord, TaskSnapshot, TaskState, TaskStatus } from '../store/types.js';

/** The task fields of the 0.0.1 API as plain data (what `task.toJSON()` returns). */
export interface CompatTaskData {
  name: string;
  isComplete: boolean;
  percentageComplete: number;
  statusText: string;
  taskData: unknown;
  processingData: unknown;
  invokeCount: number;
  lastInvokedAt: Date | null;
  taskEndedAt: Date | null;
  taskDurationInMilliseconds: number | null;
  leasedTill: Date | null;
  maxRetries: number;
  delayBetweenRetriesInSeconds: number;
  hasFailed: boolean;
}

/**
 * A task as the 0.0.1 API shows it: a snapshot taken when it was read, with
 * the 0.0.1 getters. It is a view over the engine's task record and state;
 * read it again (getTask) to see later changes.
 */
export class CompatTask {
  readonly #record: TaskRecord;
  readonly #state: TaskState;

  /** @internal built by the compat container from a store snapshot */
  constructor(snapshot: TaskSnapshot) {
    this.#record = snapshot.record;
    this.#state = snapshot.state;
  }

  /** The task's name, unique within its container. */
  name(): string {
    return this.#record.name;
  }

  /**
   * True once the task ended, successfully or not (0.0.1: a failed task has
   * `isComplete()` and `hasFailed()` both true). Skipped and cancelled tasks
   * (engine statuses) are not complete until they are run or marked so.
   */
  isComplete(): boolean {
    return this.#state.status === 'succeeded' || this.#state.status === 'failed';
  }

  /** Progress from 0 to 100 (rounded to 6 decimals, so 57 stays 57 after the 0..1 round trip). */
  percentageComplete(): number {
    return Math.round(this.#state.progress * 100 * 1e6) / 1e6;
  }

  /** Free text describing what the task is doing. */
  statusText(): string {
    return this.#state.statusText;
  }

  /** The data the task was added with (the engine's `input`), or null. */
  taskData(): unknown {
    return this.#record.input ?? null;
  }

  /** Data saved while processing (the engine's last checkpoint), or null. */
  processingData(): unknown {
    return this.#state.checkpoint ?? null;
  }

  /** How many times the task was handed out or started (the engine's attempt count). */
  invokeCount(): number {
    return this.#state.attempt;
  }

  /** Start of the current or last attempt, or null. */
  lastInvokedAt(): Date | null {
    return this.#state.startedAt;
  }

  /** When the task last ended, or null. */
  taskEndedAt(): Date | null {
    return this.#state.endedAt;
  }

  /** Duration of the attempt that ended the task, or the value last set through updateTask/addTask; null when unknown. */
  taskDurationInMilliseconds(): number | null {
    return this.#state.durationMs;
  }

  /**
   * Until when the task is leased: the lease of a running attempt, or the
   * value set through updateTask/addTask (kept until the task is claimed or ends); null otherwise.
   */
  leasedTill(): Date | null {
    return this.#state.leaseUntil;
  }

  /** Retries after the first failed attempt. */
  maxRetries(): number {
    return this.#record.options.retries;
  }

  /** Delay before a retry, in seconds. */
  delayBetweenRetriesInSeconds(): number {
    return this.#record.options.backoff.initialMs / 1000;
  }

  /** True once the task failed for good (then `isComplete()` is true as well). */
  hasFailed(): boolean {
    return this.#state.status === 'failed';
  }

  /** The engine's status: pending, running, succeeded, failed, skipped or cancelled. */
  status(): TaskStatus {
    return this.#state.status;
  }

  /** Names of the tasks that must be complete first. */
  dependsOn(): string[] {
    return [...this.#record.dependsOn];
  }

  /** Key of the engine handler that runs the task. */
  handler(): string {
    return this.#record.handler;
  }

  /** What the task's handler returned when the engine ran it, or null. */
  output(): unknown {
    return this.#state.output ?? null;
  }

  /** The 0.0.1 fields as a plain object (used by JSON.stringify). */
  toJSON(): CompatTaskData {
    return {
      name: this.name(),
      isComplete: this.isComplete(),
      percentageComplete: this.percentageComplete(),
      statusText: this.statusText(),
      taskData: this.taskData(),
      processingData: this.processingData(),
      invokeCount: this.invokeCount(),
      lastInvokedAt: this.lastInvokedAt(),
      taskEndedAt: this.taskEndedAt(),
      taskDurationInMilliseconds: this.taskDurationInMilliseconds(),
      leasedTill: this.leasedTill(),
      maxRetries: this.maxRetries(),
      delayBetweenRetriesInSeconds: this.delayBetweenRetriesInSeconds(),
      hasFailed: this.hasFailed(),
    };
  }
}
