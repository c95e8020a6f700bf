import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { ContainerDefinition } from '../definition/types.js';
import { Runner } from '../engine/runner.js';
import { coerceError, InvalidOptionError, TaskStatusError } from '../errors.js';
import { defaultConnection } from '../store/mongo/models.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import { MongoScheduleStore } from '../store/mongo/schedule-store.js';
import { slotKey, type ScheduleStore, type SlotRecord } from '../store/schedule-types.js';
import type { TaskStore } from '../store/types.js';
import type { ScheduleDefinition } from './define.js';
import { SchedulerEvents, type SchedulerEventMap, type SchedulerEventName } from './events.js';
import { buildSlotContainer, planSlots } from './slots.js';

/** A time source; tests inject one to drive schedules. */
export interface Clock {
  now(): Date;
}

/** Options of {@link Scheduler.create}. */
export interface SchedulerOptions {
  /** Schedules from {@link defineSchedule}; names must be unique. */
  schedules: ScheduleDefinition[];
  /** Mongoose connection to use. @defaultValue mongoose's default connection */
  connection?: Connection;
  /** Where "now" comes from. @defaultValue the system clock */
  clock?: Clock;
  /** Identifies this scheduler in slot claims and its runners' claims. @defaultValue `<hostname>:<pid>:<random>` */
  runnerId?: string;
  /** Prefix of the collection names (shared with the runners). @defaultValue 'pts' */
  collectionPrefix?: string;
  /** Interval between ticks after `start()`, in ms (each tick reads the clock). @defaultValue 1000 */
  tickMs?: number;
  /**
   * Interval between recovery passes after `start()`, in ms: a slot left
   * unfinished by a scheduler that died while this one kept running gets a
   * runner from this one once its container shows no live runner (no running
   * task with an unexpired lease). Without it such a slot would wait for the
   * next `start()` somewhere, and block `skip`/`queue` until then.
   * @defaultValue 60000
   */
  recoverMs?: number;
  /** Ready stores instead of a connection (for tests of other backends). */
  stores?: { tasks: TaskStore; schedules: ScheduleStore };
}

/** What one tick did with one slot. */
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

interface ActiveSlot {
  runner: Runner | null;
  done: Promise<void>;
}

/**
 * Runs schedules: on each tick, claims the due slots of every schedule
 * (exactly one claim per slot across all processes, by a unique `_id`),
 * applies the overlap and catch-up policies, and runs each started slot's
 * container with a {@link Runner}. On `start()` it first resumes the slots
 * that a stopped or killed scheduler left unfinished.
 */
export class Scheduler {
  /** Typed events; see {@link SchedulerEventMap}. */
  readonly events = new SchedulerEvents();
  private readonly byName: ReadonlyMap<string, ScheduleDefinition>;
  private readonly cursors = new Map<string, Date>();
  private readonly active = new Map<string, ActiveSlot>();
  /** Queued slots this scheduler knows of, by slot id. */
  private readonly queued = new Map<string, SlotRecord>();
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private startPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;
  private stopping = false;

  private constructor(
    private readonly tasks: TaskStore,
    private readonly store: ScheduleStore,
    private readonly clock: Clock,
    /** This scheduler's identifier, as recorded in its claims. */
    readonly runnerId: string,
    private readonly tickMs: number,
    private readonly recoverMs: number,
    schedules: ScheduleDefinition[],
  ) {
    this.byName = new Map(schedules.map((s) => [s.name, s]));
  }

  /**
   * Validates the options, then opens the stores (creating collections and
   * indexes). Nothing is written when validation fails.
   * @throws {@link InvalidOptionError} for bad options or duplicate schedule names
   */
  static async create(options: SchedulerOptions): Promise<Scheduler> {
    const schedules = options?.schedules;
    if (!Array.isArray(schedules) || schedules.length === 0) {
      throw new InvalidOptionError('schedules', 'must be a non-empty array of defineSchedule(...) results');
    }
    const seen = new Set<string>();
    for (const s of schedules) {
      if (typeof s?.pattern?.nextRun !== 'function') throw new InvalidOptionError('schedules', 'each must come from defineSchedule(...)');
      if (seen.has(s.name)) throw new InvalidOptionError('schedules', `schedule "${s.name}" is given more than once`);
      seen.add(s.name);
    }
    const clock = options.clock ?? { now: () => new Date() };
    if (typeof clock.now !== 'function') throw new InvalidOptionError('clock', 'must have a now(): Date method');
    const tickMs = options.tickMs ?? 1000;
    if (typeof tickMs !== 'number' || !Number.isFinite(tickMs) || tickMs <= 0) {
      throw new InvalidOptionError('tickMs', `must be a positive number of ms, got ${String(tickMs)}`);
    }
    const recoverMs = options.recoverMs ?? 60_000;
    if (typeof recoverMs !== 'number' || !Number.isFinite(recoverMs) || recoverMs <= 0) {
      throw new InvalidOptionError('recoverMs', `must be a positive number of ms, got ${String(recoverMs)}`);
    }
    const runnerId = options.runnerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    let stores = options.stores;
    if (!stores) {
      const connection = options.connection ?? defaultConnection();
      const prefix = { collectionPrefix: options.collectionPrefix };
      stores = {
        tasks: await MongoStore.create(connection, prefix),
        schedules: await MongoScheduleStore.create(connection, prefix),
      };
    }
    return new Scheduler(stores.tasks, stores.schedules, clock, runnerId, tickMs, recoverMs, schedules);
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
        if (performance.now() - lastRecovery >= this.recoverMs) {
          lastRecovery = performance.now();
          this.serialize(() => this.recover(true)).catch((error) => this.reportError(error, 'recovery pass'));
        }
      }, this.tickMs);
    })();
    return this.startPromise;
  }

  /**
   * Graceful stop: no more ticks, then stops the runners this scheduler
   * started (each waits for its running attempts up to its `stopTimeoutMs`).
   * Their slots stay `started`, so the next scheduler resumes them. Idempotent.
   */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopping = true;
      if (this.timer) clearInterval(this.timer);
      await this.startPromise?.catch(() => undefined);
      await this.chain.catch(() => undefined);
      await Promise.allSettled([...this.active.values()].map((a) => a.runner?.stop()));
      await Promise.allSettled([...this.active.values()].map((a) => a.done));
    })();
    return this.stopPromise;
  }

  /**
   * Processes every slot due at `clock.now()` for every schedule, and starts
   * queued slots whose turn has come. Ticks never overlap: a call waits for
   * the one in flight. Errors are reported as `scheduler:error`, per schedule.
   */
  tick(): Promise<SlotOutcome[]> {
    if (this.stopping) return Promise.resolve([]);
    return this.serialize(async () => {
      this.ticking = true;
      try {
        const now = this.clock.now();
        const outcomes: SlotOutcome[] = [];
        for (const s of this.byName.values()) {
          if (this.stopping) break;
          try {
            outcomes.push(...(await this.tickSchedule(s, now)));
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

  /** Every slot record of a schedule, oldest first (scans the slots collection). */
  slots(schedule: string): Promise<SlotRecord[]> {
    return this.store.listSlots(schedule);
  }

  private async tickSchedule(s: ScheduleDefinition, now: Date): Promise<SlotOutcome[]> {
    // First sight of a schedule with no head: its cursor starts now, so the
    // past is not backfilled. Later ticks (and restarts) read the cursor.
    let cursor = this.cursors.get(s.name);
    if (!cursor) {
      cursor = (await this.store.openHead(s.name, now)).cursor;
      this.cursors.set(s.name, cursor);
    }
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

  /** Validates the slot's container, decides the overlap policy from persisted state, and claims. */
  private async processSlot(s: ScheduleDefinition, slot: Date): Promise<SlotOutcome> {
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
    const claimed = await this.store.claimSlot({ schedule: s.name, slot, container, state, reason, claimedBy: this.runnerId });
    if (!claimed) return { ...base, action: 'taken', container };
    this.events.emit('slot:claimed', { ...base, container, state });
    if (state === 'skipped') {
      this.events.emit('slot:skipped', { ...base, container, reason: reason! });
    } else if (state === 'queued') {
      const record = await this.store.getSlot(s.name, slot);
      if (record) this.queued.set(record.id, record);
      this.events.emit('slot:queued', { ...base, container, reason: reason! });
    } else {
      this.launch(s, slot, definition, false);
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
      if (r.state === 'started' && !this.active.has(r.id)) {
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
    this.launch(s, next.slot, definition, false);
  }

  /**
   * Attaches runners to unfinished started slots and learns the queued ones.
   * At start-up every unfinished slot gets one; on later passes (`orphansOnly`)
   * only those whose container shows no live runner.
   */
  private async recover(orphansOnly: boolean): Promise<void> {
    for (const s of this.byName.values()) {
      try {
        for (const r of await this.store.listOpenSlots(s.name)) {
          if (r.state === 'queued') {
            this.queued.set(r.id, r);
            continue;
          }
          if (this.active.has(r.id)) continue;
          const c = await this.tasks.getContainer(r.container);
          if (c && c.status !== 'running') {
            await this.store.finishSlot(s.name, r.slot, c.status);
            continue;
          }
          if (orphansOnly && (await this.hasLiveRunner(r.container))) continue;
          try {
            this.launch(s, r.slot, await buildSlotContainer(s, r.slot), true);
          } catch (error) {
            this.reportError(error, 'container factory (resume)', s.name, r.slot);
          }
        }
        await this.advanceQueue(s);
      } catch (error) {
        this.reportError(error, 'resuming unfinished slots', s.name);
      }
    }
  }

  /**
   * Whether some runner still works on `container`: a running task whose
   * written lease has not expired. Only decides whether to attach one more
   * runner (two on one container are safe: leases and fencing decide).
   */
  private async hasLiveRunner(container: string): Promise<boolean> {
    const snapshot = await this.tasks.loadSnapshot(container);
    const now = Date.now();
    return (snapshot?.tasks ?? []).some((t) => t.state.status === 'running' && (t.state.leaseUntil?.getTime() ?? 0) > now);
  }

  /** Runs the slot's container in the background; records its end on the slot. */
  private launch(s: ScheduleDefinition, slot: Date, definition: ContainerDefinition, resumed: boolean): void {
    const id = slotKey(s.name, slot);
    if (this.active.has(id)) return;
    const container = definition.name;
    const entry: ActiveSlot = { runner: null, done: Promise.resolve() };
    entry.done = (async () => {
      const runner = await Runner.create({ ...s.runner, container: definition, store: this.tasks, runnerId: this.runnerId });
      entry.runner = runner;
      if (this.stopping) return;
      runner.on('runner:error', (e) =>
        this.events.emit('scheduler:error', { error: e.error, context: `runner of "${container}": ${e.context}`, schedule: s.name, slot }),
      );
      this.events.emit('slot:started', { schedule: s.name, slot, container, resumed, runner });
      const result = await runner.run();
      if (result.status === 'stopped' || result.status === 'running') return; // left started: the next scheduler resumes it
      await this.store.finishSlot(s.name, slot, result.status);
      this.events.emit('slot:completed', { schedule: s.name, slot, container, status: result.status, durationMs: result.durationMs });
    })()
      .catch((error) => this.reportError(error, `running container "${container}"`, s.name, slot))
      .finally(() => {
        this.active.delete(id);
        // The next queued slot may start now, without waiting for a tick.
        if (!this.stopping && this.queued.size > 0) void this.serialize(() => this.advanceQueue(s)).catch(() => undefined);
      });
    this.active.set(id, entry);
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
