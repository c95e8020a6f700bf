import type { ContainerDefinition } from '../definition/types.js';
import { Runner } from '../engine/runner.js';
import { coerceError, DefinitionConflictError, SlotContainerTakenError } from '../errors.js';
import { slotKey, type ScheduleStore } from '../store/schedule-types.js';
import type { TaskStore } from '../store/types.js';
import type { ScheduleDefinition } from './define.js';
import type { SchedulerEvents } from './events.js';

interface ActiveSlot {
  runner: Runner | null;
  done: Promise<void>;
}

/**
 * Runs slots' containers for one scheduler: one {@link Runner} per started
 * slot, the slot's end recorded on its record. Before a runner starts, the
 * slot takes ownership of its container name (an insert under that name), so
 * two slots never share one container; a deploy that changed the container's
 * definition ends the slot `superseded`.
 */
export class SlotLauncher {
  private readonly active = new Map<string, ActiveSlot>();
  /** Schedules with a slot this scheduler's graceful stop left `started`. */
  readonly leftStarted = new Set<string>();
  stopping = false;

  constructor(
    private readonly tasks: TaskStore,
    private readonly store: ScheduleStore,
    private readonly events: SchedulerEvents,
    private readonly runnerId: string,
    /** Called after a slot's runner ended (a queued slot may start now). */
    private readonly onEnded: (s: ScheduleDefinition) => void,
  ) {}

  /** True while this scheduler runs the slot. */
  has(id: string): boolean {
    return this.active.has(id);
  }

  /** Stops every runner (graceful: each waits up to its `stopTimeoutMs`) and waits for their slots to settle. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.active.values()].map((a) => a.runner?.stop()));
    await Promise.allSettled([...this.active.values()].map((a) => a.done));
  }

  /** Runs the slot's container in the background; records its end on the slot. `resumed`: found unfinished. */
  launch(s: ScheduleDefinition, slot: Date, definition: ContainerDefinition, resumed: boolean): void {
    const id = slotKey(s.name, slot);
    if (this.active.has(id)) return;
    const container = definition.name;
    const entry: ActiveSlot = { runner: null, done: Promise.resolve() };
    entry.done = (async () => {
      if (!(await this.ownContainer(s, slot, container, resumed))) return;
      let runner: Runner;
      try {
        runner = await Runner.create({ ...s.runner, container: definition, store: this.tasks, runnerId: this.runnerId });
      } catch (error) {
        if (!(error instanceof DefinitionConflictError)) throw error;
        await this.store.finishSlot(s.name, slot, 'superseded', error.message);
        this.events.emit('slot:superseded', { schedule: s.name, slot, container, error });
        return;
      }
      entry.runner = runner;
      if (this.stopping) return;
      runner.on('runner:error', (e) =>
        this.events.emit('scheduler:error', { error: e.error, context: `runner of "${container}": ${e.context}`, schedule: s.name, slot }),
      );
      this.events.emit('slot:started', { schedule: s.name, slot, container, resumed, runner });
      const result = await runner.run();
      if (result.status === 'stopped' || result.status === 'running') {
        this.leftStarted.add(s.name); // left started: another scheduler continues it
        return;
      }
      await this.store.finishSlot(s.name, slot, result.status);
      this.events.emit('slot:completed', { schedule: s.name, slot, container, status: result.status, durationMs: result.durationMs });
    })()
      .catch((error) =>
        this.events.emit('scheduler:error', { error: coerceError(error), context: `running container "${container}"`, schedule: s.name, slot }),
      )
      .finally(() => {
        this.active.delete(id);
        if (!this.stopping) this.onEnded(s);
      });
    this.active.set(id, entry);
  }

  /**
   * Takes the container name for the slot. A name owned by another slot, or
   * (for a slot not resumed) a container that exists without an owner, ends
   * the slot `failed`: it would otherwise "succeed" with another slot's run.
   */
  private async ownContainer(s: ScheduleDefinition, slot: Date, container: string, resumed: boolean): Promise<boolean> {
    const id = slotKey(s.name, slot);
    const { owner, inserted } = await this.store.claimContainer(container, id);
    let taken: SlotContainerTakenError | null = null;
    if (owner !== id) taken = new SlotContainerTakenError(s.name, slot, container, owner);
    else if (inserted && !resumed && (await this.tasks.getContainer(container))) taken = new SlotContainerTakenError(s.name, slot, container, null);
    if (!taken) return true;
    await this.store.finishSlot(s.name, slot, 'failed', taken.message);
    this.events.emit('slot:failed', { schedule: s.name, slot, container, error: taken });
    this.events.emit('scheduler:error', { error: taken, context: 'slot container', schedule: s.name, slot });
    return false;
  }
}
