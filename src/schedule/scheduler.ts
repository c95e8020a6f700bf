import type { ContainerDefinition } from '../definition/types.js';
import { coerceError, TaskStatusError, UnknownScheduleError } from '../errors.js';
import { defaultConnection } from '../store/mongo/models.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import { MongoScheduleStore } from '../store/mongo/schedule-store.js';
import { type ScheduleStore, type SlotRecord, type TriggerRequest } from '../store/schedule-types.js';
import type { TaskStore } from '../store/types.js';
import { SlotTime } from './clock.js';
import type { ScheduleDefinition } from './define.js';
import { SchedulerEvents, type SchedulerEventMap, type SchedulerEventName } from './events.js';
import { resolveSchedulerOptions, type ResolvedSchedulerOptions, type SchedulerOptions } from './options.js';
import { hasLiveRunner } from './recovery.js';
import { SlotLauncher } from './slot-launcher.js';
import { buildSlotContainer, planSlots, triggerSlot } from './slots.js';

export type { Clock } from './clock.js';
export type { SchedulerOptions } from './options.js';

/** What one tick (or trigger) did with one slot. */
export interface SlotOutcome {
  schedule: string;
  slot: Date;
  /**
   * `started` | `queued` | `skipped`: this scheduler claimed it so; `taken`:
   * another scheduler holds its claim; `invalid`: the factory failed (nothing
   * written); `missed`: passed over by the catch-up policy (nothing written).
   */
  action: 'started' | 'queued' | 'skipped' | 'taken' | 'invalid' | 'missed';
  container?: string;
  reason?: string;
}

/**
 * Runs schedules: on each tick, claims the due slots of every schedule
 * (exactly one claim per slot across all processes, by a unique `_id`),
 * judged on the clock every scheduler shares (the database server's by
 * default), applies the overlap and catch-up policies, and runs each started
 * slot's container with a {@link Runner}. On `start()` it first resumes the
 * slots that a stopped or killed scheduler left unfinished.
 */
export class Scheduler {
  /** Typed events; see {@link SchedulerEventMap}. */
  readonly events = new SchedulerEvents();
  /** This scheduler's identifier, as recorded in its claims. */
  readonly runnerId: string;
  private readonly byName: ReadonlyMap<string, ScheduleDefinition>;
  private readonly cursors = new Map<string, Date>();
  /** Queued slots this scheduler knows of, by slot id. */
  private readonly queued = new Map<string, SlotRecord>();
  /** Per schedule, the last `handoverAt` seen on its head (ms). */
  private readonly handoversSeen = new Map<string, number>();
  private readonly launcher: SlotLauncher;
  private readonly time: SlotTime;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private startPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;
  private stopping = false;

  private constructor(
    private readonly tasks: TaskStore,
    private readonly store: ScheduleStore,
    private readonly o: ResolvedSchedulerOptions,
  ) {
    this.runnerId = o.runnerId;
    this.byName = new Map(o.schedules.map((s) => [s.name, s]));
    this.time = new SlotTime(o.clock, tasks.serverTime ? () => tasks.serverTime!() : null);
    this.launcher = new SlotLauncher(tasks, store, this.events, o.runnerId, (s) => {
      // The next queued slot may start now, without waiting for a tick.
      if (!this.stopping && this.queued.size > 0) void this.serialize(() => this.advanceQueue(s)).catch(() => undefined);
    });
  }

  /**
   * Validates the options, then opens the stores (creating collections and
   * indexes). Nothing is written when validation fails.
   * @throws {@link InvalidOptionError} for bad options or duplicate schedule names
   */
  static async create(options: SchedulerOptions): Promise<Scheduler> {
    const resolved = resolveSchedulerOptions(options);
    let stores = options.stores;
    if (!stores) {
      const connection = options.connection ?? defaultConnection();
      const prefix = { collectionPrefix: options.collectionPrefix };
      stores = {
        tasks: await MongoStore.create(connection, prefix),
        schedules: await MongoScheduleStore.create(connection, prefix),
      };
    }
    return new Scheduler(stores.tasks, stores.schedules, resolved);
  }

  /** Adds a typed listener (shorthand for `events.on`). */
  on<E extends SchedulerEventName>(event: E, listener: (payload: SchedulerEventMap[E]) => void): this {
    this.events.on(event, listener);
    return this;
  }

  /**
   * Resumes the unfinished slots found in the database (a runner attaches to
   * each unfinished container; runners share containers safely), then ticks
   * every `tickMs`. Idempotent: calling it again returns the same promise.
   * @throws {@link TaskStatusError} (`PTS_SCHEDULER_STOPPED`) after `stop()`
   */
  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new TaskStatusError('PTS_SCHEDULER_STOPPED', 'This scheduler was stopped; create a new one'));
    this.startPromise ??= (async () => {
      await this.serialize(() => this.recover(false));
      if (this.stopping) return;
      let lastRecovery = performance.now();
      this.timer = setInterval(() => {
        if (this.ticking) return; // a slow tick is not piled up
        this.tick().catch((error) => this.reportError(error, 'tick'));
        if (performance.now() - lastRecovery >= this.o.recoverMs) {
          lastRecovery = performance.now();
          this.serialize(() => this.recover(true)).catch((error) => this.reportError(error, 'recovery pass'));
        }
      }, this.o.tickMs);
    })();
    return this.startPromise;
  }

  /**
   * Graceful stop: no more ticks, then stops the runners this scheduler
   * started (each waits for its running attempts up to its `stopTimeoutMs`,
   * then releases their leases). Their slots stay `started`, and the stop is
   * written on their schedules' heads, so a scheduler still running takes
   * them over at its next tick. Idempotent.
   */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopping = true;
      if (this.timer) clearInterval(this.timer);
      await this.startPromise?.catch(() => undefined);
      await this.chain.catch(() => undefined);
      await this.launcher.stopAll();
      for (const name of this.launcher.leftStarted) {
        await this.store.signalHandover(name).catch((error) => this.reportError(error, 'handing slots over', name));
      }
    })();
    return this.stopPromise;
  }

  /**
   * Processes every slot due now for every schedule, serves trigger requests
   * and handovers written on the heads, and starts queued slots whose turn
   * has come. Ticks never overlap: a call waits for the one in flight. Errors
   * are reported as `scheduler:error`, per schedule.
   */
  tick(): Promise<SlotOutcome[]> {
    if (this.stopping) return Promise.resolve([]);
    return this.serialize(async () => {
      this.ticking = true;
      try {
        const now = await this.time.now();
        const outcomes: SlotOutcome[] = [];
        for (const s of this.byName.values()) {
          if (this.stopping) break;
          try {
            outcomes.push(...(await this.tickSchedule(s, now)));
            await this.serveHead(s, outcomes);
            await this.advanceQueue(s);
          } catch (error) {
            this.reportError(error, 'tick', s.name);
          }
        }
        return outcomes;
      } finally {
        this.ticking = false;
      }
    });
  }

  /**
   * Claims a slot of `schedule` now, under its overlap policy: the current
   * slot (the latest cron firing at or before now) when nobody claimed it
   * (so a first start can run the current hour), otherwise a manual slot at
   * now, to the second. The slot is recorded with `manual: true`.
   * @throws {@link UnknownScheduleError} for a schedule this scheduler does not run
   */
  async trigger(schedule: string): Promise<SlotOutcome> {
    const s = this.byName.get(schedule);
    if (!s) throw new UnknownScheduleError(schedule, `this scheduler runs ${[...this.byName.keys()].join(', ')}`);
    const request: TriggerRequest = { requestedAt: await this.time.now(), requestedBy: this.runnerId };
    return this.serialize(() => this.serveTrigger(s, request));
  }

  /**
   * The next cron firing of `schedule` after now and after every decided slot
   * (the time the next slot will be claimed), on the shared clock; null when
   * the expression never fires again.
   * @throws {@link UnknownScheduleError} for a schedule this scheduler does not run
   */
  async nextFiring(schedule: string): Promise<Date | null> {
    const s = this.byName.get(schedule);
    if (!s) throw new UnknownScheduleError(schedule, `this scheduler runs ${[...this.byName.keys()].join(', ')}`);
    const now = await this.time.now();
    const cursor = this.cursors.get(s.name) ?? (await this.store.getHead(s.name))?.cursor ?? now;
    return s.pattern.nextRun(cursor.getTime() > now.getTime() ? cursor : now);
  }

  /** Every slot record of a schedule, oldest first (scans the slots collection). */
  slots(schedule: string): Promise<SlotRecord[]> {
    return this.store.listSlots(schedule);
  }

  private async tickSchedule(s: ScheduleDefinition, now: Date): Promise<SlotOutcome[]> {
    // First sight of a schedule with no head: its cursor starts now, so the
    // past is not backfilled. Later ticks (and restarts) read the cursor.
    const cursor = await this.cursorOf(s, now);
    const plan = planSlots(s, cursor, now);
    if (!plan.newest) return [];
    const outcomes: SlotOutcome[] = plan.passed.map((slot) => ({ schedule: s.name, slot, action: 'missed', reason: `catch-up '${s.catchUp}'` }));
    if (plan.passed.length > 0 || plan.truncated) {
      this.events.emit('slot:missed', { schedule: s.name, slots: plan.passed, truncated: plan.truncated, policy: s.catchUp });
    }
    for (const slot of plan.run) {
      if (this.stopping) return outcomes; // the cursor stays: the next scheduler decides these
      outcomes.push(await this.processSlot(s, slot));
    }
    await this.store.advanceHead(s.name, plan.newest);
    this.cursors.set(s.name, plan.newest);
    return outcomes;
  }

  private async cursorOf(s: ScheduleDefinition, now: Date): Promise<Date> {
    let cursor = this.cursors.get(s.name);
    if (!cursor) {
      const { cron, timezone, overlap, catchUp } = s;
      const head = await this.store.openHead(s.name, now, { cron, timezone, overlap, catchUp });
      cursor = head.cursor;
      this.cursors.set(s.name, cursor);
      this.handoversSeen.set(s.name, head.handoverAt?.getTime() ?? 0);
    }
    return cursor;
  }

  /** Serves what others wrote on the head: a trigger request, a graceful stop's handover. */
  private async serveHead(s: ScheduleDefinition, outcomes: SlotOutcome[]): Promise<void> {
    const head = await this.store.getHead(s.name);
    if (!head) return;
    if (head.trigger) {
      outcomes.push(await this.serveTrigger(s, head.trigger));
      await this.store.clearTrigger(s.name, head.trigger);
    }
    const handover = head.handoverAt?.getTime() ?? 0;
    if (handover > (this.handoversSeen.get(s.name) ?? 0)) {
      this.handoversSeen.set(s.name, handover);
      await this.recoverSchedule(s, true);
    }
  }

  private async serveTrigger(s: ScheduleDefinition, request: TriggerRequest): Promise<SlotOutcome> {
    const current = triggerSlot(s, request.requestedAt);
    const taken = current ? await this.store.getSlot(s.name, current) : null;
    // Deterministic from the request, so schedulers serving one request race on one `_id`.
    const slot = current && !taken ? current : new Date(Math.floor(request.requestedAt.getTime() / 1000) * 1000);
    return this.processSlot(s, slot, true);
  }

  /** Validates the slot's container, decides the overlap policy from persisted state, and claims. */
  private async processSlot(s: ScheduleDefinition, slot: Date, manual = false): Promise<SlotOutcome> {
    const base = { schedule: s.name, slot };
    let definition: ContainerDefinition;
    try {
      definition = await buildSlotContainer(s, slot);
    } catch (error) {
      this.reportError(error, 'container factory', s.name, slot);
      return { ...base, action: 'invalid', reason: (error as Error).message };
    }
    const container = definition.name;
    let state: 'started' | 'queued' | 'skipped' = 'started';
    let reason: string | null = null;
    if (s.overlap !== 'parallel') {
      const blocker = (await this.unfinishedBefore(s, slot))[0];
      if (blocker) {
        state = s.overlap === 'skip' ? 'skipped' : 'queued';
        reason =
          s.overlap === 'skip'
            ? `slot ${blocker.slot.toISOString()} (container "${blocker.container}") is still ${blocker.state === 'queued' ? 'queued' : 'running'}`
            : `waits for slot ${blocker.slot.toISOString()} (container "${blocker.container}")`;
      }
    }
    const claimed = await this.store.claimSlot({ schedule: s.name, slot, container, state, reason, claimedBy: this.runnerId, manual });
    if (!claimed) {
      // Joining: the slot runs elsewhere; its container takes this scheduler's runner too.
      if (this.o.join && (await this.store.getSlot(s.name, slot))?.state === 'started') this.launcher.launch(s, slot, definition, true);
      return { ...base, action: 'taken', container };
    }
    this.events.emit('slot:claimed', { ...base, container, state });
    if (state === 'skipped') {
      this.events.emit('slot:skipped', { ...base, container, reason: reason! });
    } else if (state === 'queued') {
      const record = await this.store.getSlot(s.name, slot);
      if (record) this.queued.set(record.id, record);
      this.events.emit('slot:queued', { ...base, container, reason: reason! });
    } else {
      this.launcher.launch(s, slot, definition, false);
    }
    return { ...base, action: state, container, ...(reason ? { reason } : {}) };
  }

  /**
   * Open slots before `slot`, from the database: queued ones, and started ones
   * whose container is not finished (or not created yet). Started slots whose
   * container finished meanwhile are recorded as finished on the way.
   */
  private async unfinishedBefore(s: ScheduleDefinition, slot: Date): Promise<SlotRecord[]> {
    const open = (await this.store.listOpenSlots(s.name)).filter((r) => r.slot.getTime() < slot.getTime());
    const unfinished: SlotRecord[] = [];
    for (const r of open) {
      if (r.state === 'started' && !this.launcher.has(r.id)) {
        const c = await this.tasks.getContainer(r.container);
        if (c && c.status !== 'running') {
          await this.store.finishSlot(s.name, r.slot, c.status);
          continue;
        }
      }
      unfinished.push(r);
    }
    return unfinished;
  }

  /** Starts the oldest queued slot of a schedule once nothing before it is unfinished. */
  private async advanceQueue(s: ScheduleDefinition): Promise<void> {
    const mine = [...this.queued.values()].filter((q) => q.schedule === s.name).sort((a, b) => a.slot.getTime() - b.slot.getTime());
    const next = mine[0];
    if (!next || this.stopping) return;
    const current = await this.store.getSlot(s.name, next.slot);
    if (current?.state !== 'queued') {
      this.queued.delete(next.id); // another scheduler started it
      return;
    }
    if ((await this.unfinishedBefore(s, next.slot)).length > 0) return;
    let definition: ContainerDefinition;
    try {
      definition = await buildSlotContainer(s, next.slot);
    } catch (error) {
      this.reportError(error, 'container factory (queued slot)', s.name, next.slot);
      return;
    }
    await this.store.markSlotStarted(s.name, next.slot);
    this.queued.delete(next.id);
    this.launcher.launch(s, next.slot, definition, false);
  }

  /**
   * Attaches runners to unfinished started slots and learns the queued ones.
   * At start-up every unfinished slot gets one; on later passes (`orphansOnly`)
   * only those whose container shows no live runner, unless this scheduler
   * joins running slots (option `join`).
   */
  private async recover(orphansOnly: boolean): Promise<void> {
    for (const s of this.byName.values()) {
      try {
        await this.recoverSchedule(s, orphansOnly);
      } catch (error) {
        this.reportError(error, 'resuming unfinished slots', s.name);
      }
    }
  }

  private async recoverSchedule(s: ScheduleDefinition, orphansOnly: boolean): Promise<void> {
    for (const r of await this.store.listOpenSlots(s.name)) {
      if (r.state === 'queued') {
        this.queued.set(r.id, r);
        continue;
      }
      if (this.launcher.has(r.id)) continue;
      const c = await this.tasks.getContainer(r.container);
      if (c && c.status !== 'running') {
        await this.store.finishSlot(s.name, r.slot, c.status);
        continue;
      }
      if (orphansOnly && !this.o.join && (await hasLiveRunner(this.tasks, r.container))) continue;
      try {
        this.launcher.launch(s, r.slot, await buildSlotContainer(s, r.slot), true);
      } catch (error) {
        this.reportError(error, 'container factory (resume)', s.name, r.slot);
      }
    }
    await this.advanceQueue(s);
  }

  /** Runs `fn` after everything queued before it (ticks, recovery, queue steps never interleave). */
  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private reportError(error: unknown, context: string, schedule?: string, slot?: Date): void {
    this.events.emit('scheduler:error', {
      error: coerceError(error),
      context,
      ...(schedule ? { schedule } : {}),
      ...(slot ? { slot } : {}),
    });
  }
}

