import { EventEmitter } from 'eventemitter3';
import type { Runner } from '../engine/runner.js';
import type { ContainerStatus } from '../store/types.js';

/** Every event a scheduler emits, each with one payload object. Times are slot instants (UTC Dates). */
export interface SchedulerEventMap {
  /** This scheduler won the slot's claim (another process holding it emits nothing here). */
  'slot:claimed': { schedule: string; slot: Date; container: string; state: 'started' | 'queued' | 'skipped' };
  /** Overlap `skip`: recorded as skipped, with the reason. */
  'slot:skipped': { schedule: string; slot: Date; container: string; reason: string };
  /** Overlap `queue`: recorded as queued; starts when the earlier slots finish. */
  'slot:queued': { schedule: string; slot: Date; container: string; reason: string };
  /**
   * A runner of this scheduler starts on the slot's container; `resumed`: the
   * slot was found unfinished at start-up. Listeners may subscribe to the
   * runner's task events here: it runs only after they return.
   */
  'slot:started': { schedule: string; slot: Date; container: string; resumed: boolean; runner: Runner };
  /** The slot's container finished (seen by this scheduler's runner). */
  'slot:completed': { schedule: string; slot: Date; container: string; status: ContainerStatus; durationMs: number };
  /** Missed slots the catch-up policy passed over (nothing is written for them). */
  'slot:missed': { schedule: string; slots: Date[]; truncated: boolean; policy: 'latest' | 'all' | 'none' };
  /** Something went wrong outside a task: a factory, a store write, a listener. `slot` when it concerns one. */
  'scheduler:error': { error: Error; context: string; schedule?: string; slot?: Date };
}

/** Names of the events in {@link SchedulerEventMap}. */
export type SchedulerEventName = keyof SchedulerEventMap;

type Listener<E extends SchedulerEventName> = (payload: SchedulerEventMap[E]) => void;

/**
 * A typed emitter whose `emit` never throws: a throwing (or rejecting)
 * listener is reported as `scheduler:error`. Without a listener of its own,
 * `scheduler:error` goes to `process.emitWarning` (never an unhandled 'error').
 */
export class SchedulerEvents {
  private readonly ee = new EventEmitter();

  /** Adds a listener. */
  on<E extends SchedulerEventName>(event: E, listener: Listener<E>): this {
    this.ee.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Adds a listener that runs once. */
  once<E extends SchedulerEventName>(event: E, listener: Listener<E>): this {
    this.ee.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener. */
  off<E extends SchedulerEventName>(event: E, listener: Listener<E>): this {
    this.ee.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Calls each listener in turn, isolating failures. */
  emit<E extends SchedulerEventName>(event: E, payload: SchedulerEventMap[E]): void {
    const listeners = this.ee.listeners(event) as Array<Listener<E>>;
    if (event === 'scheduler:error' && listeners.length === 0) {
      const p = payload as SchedulerEventMap['scheduler:error'];
      process.emitWarning(`persistent-task-status scheduler: ${p.context}: ${p.error.stack ?? p.error.message}`);
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

  private reportListenerError(event: SchedulerEventName, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (event === 'scheduler:error') {
      process.emitWarning(`persistent-task-status: a scheduler:error listener threw: ${err.message}`);
      return;
    }
    this.emit('scheduler:error', { error: err, context: `listener of "${event}" threw` });
  }
}
