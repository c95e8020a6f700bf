import { SafeEvents } from '../safe-events.js';
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
  /**
   * The slot's container was created with a definition the schedule's factory
   * no longer produces (a deploy mid-slot): the slot is ended `superseded`,
   * so later slots are not held back; the container is left as it was.
   */
  'slot:superseded': { schedule: string; slot: Date; container: string; error: Error };
  /** The slot could not run (e.g. its container name belongs to another slot): ended `failed`. */
  'slot:failed': { schedule: string; slot: Date; container: string; error: Error };
  /** Missed slots the catch-up policy passed over (nothing is written for them). */
  'slot:missed': { schedule: string; slots: Date[]; truncated: boolean; policy: 'latest' | 'all' | 'none' };
  /** Something went wrong outside a task: a factory, a store write, a listener. `slot` when it concerns one. */
  'scheduler:error': { error: Error; context: string; schedule?: string; slot?: Date };
}

/** Names of the events in {@link SchedulerEventMap}. */
export type SchedulerEventName = keyof SchedulerEventMap;

/**
 * The typed emitter of scheduler events; `emit` never throws (see {@link SafeEvents}).
 */
export class SchedulerEvents extends SafeEvents<SchedulerEventMap, 'scheduler:error'> {
  constructor() {
    super('scheduler:error', 'persistent-task-status scheduler');
  }
}
