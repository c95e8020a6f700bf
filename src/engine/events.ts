import { EventEmitter } from 'eventemitter3';
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
  'task:progress': { container: string; task: string; attempt: number; fraction: number; statusText: string };
  'task:retry': { container: string; task: string; attempt: number; error: PersistedError; retryAt: Date; delayMs: number };
  'task:succeeded': { container: string; task: string; attempt: number; durationMs: number; output: unknown };
  'task:failed': { container: string; task: string; attempt: number; error: PersistedError };
  'task:skipped': { container: string; task: string; reason: string };
  'task:cancelled': { container: string; task: string; attempt: number | null; reason: string };
  'task:released': { container: string; task: string; attempt: number };
  'task:lease-lost': { container: string; task: string; attempt: number; fencingToken: number };
  /**
   * The runner holding this task stopped renewing its lease (it died or froze):
   * this runner takes the task over once the lease expires at `expiresAt`.
   * Emitted once per lease (per claim of the task), by every runner that waits.
   */
  'task:waiting-for-lease': { container: string; task: string; attempt: number; holder: string; expiresAt: Date };
  /** Something went wrong outside a handler: a throwing listener, a failed store write. */
  'runner:error': { error: Error; context: string };
}

/** Names of the events in {@link RunnerEventMap}. */
export type RunnerEventName = keyof RunnerEventMap;

type Listener<E extends RunnerEventName> = (payload: RunnerEventMap[E]) => void;

/**
 * A typed emitter whose `emit` never throws: a throwing (or rejecting)
 * listener is reported as `runner:error` and the other listeners still run.
 * `runner:error` has a default listener that writes to stderr, removed as
 * soon as the user adds their own.
 */
export class RunnerEvents {
  private readonly ee = new EventEmitter();

  /** Adds a listener. */
  on<E extends RunnerEventName>(event: E, listener: Listener<E>): this {
    this.ee.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Adds a listener that runs once. */
  once<E extends RunnerEventName>(event: E, listener: Listener<E>): this {
    this.ee.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener. */
  off<E extends RunnerEventName>(event: E, listener: Listener<E>): this {
    this.ee.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Calls each listener in turn, isolating failures. */
  emit<E extends RunnerEventName>(event: E, payload: RunnerEventMap[E]): void {
    const listeners = this.ee.listeners(event) as Array<Listener<E>>;
    if (event === 'runner:error' && listeners.length === 0) {
      const p = payload as RunnerEventMap['runner:error'];
      process.emitWarning(`persistent-task-status: ${p.context}: ${p.error.stack ?? p.error.message}`);
      return;
    }
    for (const listener of listeners) {
      try {
        const result = listener(payload) as unknown;
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          (result as Promise<unknown>).then(undefined, (error: unknown) => this.reportListenerError(event, error));
        }
      } catch (error) {
        this.reportListenerError(event, error);
      }
    }
  }

  private reportListenerError(event: RunnerEventName, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (event === 'runner:error') {
      process.emitWarning(`persistent-task-status: a runner:error listener threw: ${err.message}`);
      return;
    }
    this.emit('runner:error', { error: err, context: `listener of "${event}" threw` });
  }
}
