import type { ResolvedTaskOptions, TaskOptions } from './options.js';

/** Values that survive a round trip through MongoDB (BSON). */
export type Persistable = unknown;

/** A task added at run time by a handler (see {@link TaskContext.addTasks}). */
export interface DynamicTaskSpec extends TaskOptions {
  /** Unique within the container; re-adding an existing name does nothing. */
  name: string;
  /** Names of tasks (existing, or in the same batch) that must succeed first. */
  dependsOn?: string[];
  /** Key of a handler registered with `.handler()`; defaults to `name`. */
  handler?: string;
  /** BSON-serializable data handed to the handler as `ctx.input`. */
  input?: Persistable;
}

/** Work done so far within one attempt, as a handler reports it (cumulative, not deltas). */
export interface ProgressCounts {
  /** Bytes processed so far in this attempt. */
  bytes?: number;
  /** Rows (records, items) processed so far in this attempt. */
  rows?: number;
}

/** What a handler receives for one attempt. */
export interface TaskContext<Deps extends Record<string, unknown> = Record<string, unknown>, Input = unknown> {
  /** Container name. */
  readonly container: string;
  /** Task name. */
  readonly task: string;
  /** 1-based attempt number (counts every claim of this task). */
  readonly attempt: number;
  /** Identifier of the runner executing this attempt. */
  readonly runnerId: string;
  /** The task's persisted input (`taskData` in the 0.0.1 API), or null. */
  readonly input: Input;
  /** Outputs of the dependencies, by task name. */
  readonly deps: Deps;
  /** State saved by the last `checkpoint()` of an earlier attempt, or undefined. */
  readonly lastCheckpoint: unknown;
  /** Aborted on timeout, cancellation, runner stop or lost lease; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /**
   * Persists progress (0..1) and an optional status text; writes are throttled.
   * `counts` (bytes and rows done so far in this attempt, cumulative) are not
   * persisted: they go with the `task:progress` event, and metrics count them.
   */
  progress(fraction: number, statusText?: string, counts?: ProgressCounts): Promise<void>;
  /** Persists state that the next attempt receives as `lastCheckpoint`; writes are throttled. */
  checkpoint(state: Persistable): Promise<void>;
  /** Adds tasks to this container, idempotently by name; persisted before this returns. */
  addTasks(tasks: DynamicTaskSpec[]): Promise<{ added: string[] }>;
}

/** A task body: a plain async function. */
export type TaskHandler<Deps extends Record<string, unknown> = Record<string, unknown>, Output = unknown> = (
  ctx: TaskContext<Deps>,
) => Promise<Output> | Output;

/** A task as declared in code. */
export interface TaskSpec extends TaskOptions {
  name: string;
  dependsOn?: string[];
  handler: TaskHandler<any, unknown>;
  input?: Persistable;
}

/** A validated task: names checked, options resolved. */
export interface CompiledTask {
  readonly name: string;
  readonly dependsOn: readonly string[];
  /** Key used to find the handler when the task is not declared in code. */
  readonly handlerName: string;
  readonly input: Persistable;
  readonly options: ResolvedTaskOptions;
  /** Present for tasks declared in code. */
  readonly handler?: TaskHandler<any, unknown>;
}

/** A validated container definition, ready for a runner. */
export interface ContainerDefinition {
  readonly name: string;
  /** When true (default), the first permanent failure stops the whole container. */
  readonly failFast: boolean;
  readonly tasks: readonly CompiledTask[];
  /** Handlers by key, for tasks added at run time or through the 0.0.1 API. */
  readonly handlers: Readonly<Record<string, TaskHandler<any, unknown>>>;
}
