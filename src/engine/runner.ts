import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ContainerBuilder } from '../definition/define.js';
import { assertSafeName } from '../definition/names.js';
import type { ContainerDefinition, TaskHandler } from '../definition/types.js';
import {
  CancelledError,
  coerceError,
  NotFoundError,
  RunnerFinishedError,
  RunnerStoppedError,
} from '../errors.js';
import { warnIfDefaultDatabase } from '../store/mongo/database-name.js';
import { defaultConnection } from '../store/mongo/models.js';
import { loadOpenTelemetry, RunnerTracing } from '../observe/tracing.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import type { ContainerSnapshot, ContainerStatus, TaskStore } from '../store/types.js';
import { ensureContainer } from './ensure-container.js';
import { RunnerEvents, type RunnerEventMap, type RunnerEventName } from './events.js';
import { Dispatcher, earliest } from './dispatch.js';
import { LeaseJudgement } from './lease-judgement.js';
import { settlementEntry } from './entries.js';
import { planStep, settlementOutcome, type StepPlan } from './plan.js';
import { Poll } from './poll.js';
import { ViewSync } from './view-sync.js';
import { TimeSlice } from '../time-slice.js';
import { EarlyStart } from './early-start.js';
import { ContainerView } from './view.js';
import { resolveRunnerOptions, type ResolvedRunnerOptions, type RunnerOptions } from './runner-options.js';

/** Tasks planned between two yields to the event loop when many changed at once. */
const PLAN_CHUNK = 5000;

/** How `run()` ended. */
export interface RunResult {
  container: string;
  /** The container's final status, or `stopped` when the runner was stopped first. */
  status: ContainerStatus | 'stopped';
  durationMs: number;
}

/**
 * Executes the ready tasks of one container under concurrency limits, until
 * the container finishes or the runner is stopped. Any number of runners, in
 * any number of processes, may run the same container at once.
 */
export class Runner {
  /** Typed events; see {@link RunnerEventMap}. */
  readonly events = new RunnerEvents();
  /** Claims and runs attempts. */
  private readonly dispatch: Dispatcher;
  private runPromise: Promise<RunResult> | null = null;
  /** How the run ended, once it has. */
  private ended: RunResult | Error | null = null;
  private stopPromise: Promise<void> | null = null;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  /** Judges other holders' leases on this runner's monotonic clock. */
  private readonly leases: LeaseJudgement;
  /** Removes this runner's listener from `options.signal`. */
  private readonly unlistenSignal: () => void;
  /** This runner's picture of the container, and the reads that keep it true. */
  private readonly sync: ViewSync;
  /** Tasks whose log must be read again before anything is decided about them. */
  private readonly catchUps = new Set<string>();
  /** A local attempt ended (or the stop began) while no step was waiting. */
  private wakePending = false;
  /** The reads between steps, and the judgement of others' leases. */
  private readonly poll: Poll;
  /** The picture said "finished" and everything was read again to confirm it. */
  private confirmed = false;
  /** Changes the definition made to the persisted container, announced when the run starts. */
  private definitionChanges: string[] = [];

  private constructor(
    private readonly store: TaskStore,
    /** Name of the container this runner executes. */
    readonly container: string,
    handlers: ReadonlyMap<string, TaskHandler<any, unknown>>,
    private readonly opts: ResolvedRunnerOptions,
    private readonly resumed: boolean,
    initial: ContainerSnapshot,
    view: ContainerView,
    signal?: AbortSignal,
  ) {
    this.sync = new ViewSync(store, container, initial.container.incarnation ?? '');
    this.sync.adopt(initial, view);
    this.leases = new LeaseJudgement(opts.leaseMs, opts.runnerId, this.events);
    this.dispatch = new Dispatcher(store, container, handlers, opts, this.events, this.sync, this.leases, this.catchUps, {
      isStopping: () => this.stopping,
      wake: () => this.wake(),
    });
    this.poll = new Poll(container, opts, this.events, this.sync, this.leases, this.dispatch, this.catchUps, () => this.wake());
    const onAbort = () => void this.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    // A shared signal must not collect one listener per finished runner.
    this.unlistenSignal = () => signal?.removeEventListener('abort', onAbort);
  }

  /**
   * Validates the definition, then creates the container or checks that the
   * persisted one matches it (throwing {@link DefinitionConflictError}).
   */
  static async create(options: RunnerOptions): Promise<Runner> {
    const opts = resolveRunnerOptions(options);
    const c = options.container;
    const definition: ContainerDefinition | null =
      typeof c === 'string' ? null : c instanceof ContainerBuilder ? c.build() : c;
    const name = definition?.name ?? (c as string);
    assertSafeName('container', name);
    const store =
      options.store ??
      (await MongoStore.create(options.connection ?? defaultConnection(), {
        collectionPrefix: options.collectionPrefix,
        serverSelectionTimeoutMs: opts.serverSelectionTimeoutMs,
        operationTimeoutMs: options.operationTimeoutMs,
        writeConcern: options.writeConcern,
        readConcern: options.readConcern,
        readPreference: options.readPreference,
        clock: opts.clock,
      }));
    if (store instanceof MongoStore) warnIfDefaultDatabase(store.database);
    const { resumed, changes, snapshot, fresh, early } = await ensureContainer(store, name, definition);
    const otel = options.tracing === false ? null : await loadOpenTelemetry();
    const tracing = otel && new RunnerTracing(otel, store, name, snapshot?.container.incarnation ?? '', opts.runnerId);
    const handlers = tracing ? new WrappedHandlers((fn) => tracing.wrap(fn)) : new Map<string, TaskHandler<any, unknown>>();
    for (const [key, fn] of Object.entries(options.handlers ?? {})) handlers.set(key, fn);
    for (const [key, fn] of Object.entries(definition?.handlers ?? {})) handlers.set(key, fn);
    // One per task: sliced, as a 100k-task definition takes tens of ms.
    const slice = new TimeSlice();
    for (const t of definition?.tasks ?? []) {
      if (t.handler) handlers.set(t.handlerName, t.handler);
      if (slice.due()) await slice.yield();
    }
    // Built in chunks: a large container's picture never holds the event loop for long.
    const view = await ContainerView.build(snapshot, fresh, slice);
    const runner = new Runner(store, name, handlers, opts, resumed, snapshot, view, options.signal);
    if (tracing) runner.on('container:completed', (e) => tracing.endRun(e.status));
    runner.definitionChanges = changes;
    if (early) runner.poll.early = new EarlyStart(store, name, snapshot.container, early.records, early.full, early.readStartedAt, () => runner.wake());
    // Announced before its run: runners started together know of each other at their first claim.
    await runner.dispatch.refreshRoster();
    return runner;
  }

  /** The MongoDB database this runner reads and writes; undefined with a custom `store`. */
  get database(): string | undefined {
    return this.store instanceof MongoStore ? this.store.database.name : undefined;
  }

  /** This runner's identifier, as recorded in its claims. */
  get runnerId(): string {
    return this.opts.runnerId;
  }

  /** Adds a typed listener (shorthand for `events.on`). */
  on<E extends RunnerEventName>(event: E, listener: (payload: RunnerEventMap[E]) => void): this {
    this.events.on(event, listener);
    return this;
  }

  /**
   * Runs until the container finishes or `stop()` is called. Calling it again
   * while the run goes on returns the same promise; calling it after the run
   * ended rejects with {@link RunnerFinishedError}: a runner runs once, so
   * create a new Runner (e.g. after `retryTasks`) to run the container again.
   */
  run(): Promise<RunResult> {
    if (this.ended) {
      const status = this.ended instanceof Error ? `with ${this.ended.name}` : this.ended.status;
      return Promise.reject(new RunnerFinishedError(this.container, status));
    }
    // However the run ends, its roster place is given back (see Roster).
    this.runPromise ??= this.loop().finally(() => this.dispatch.leaveRoster()).then(
      (result) => {
        this.ended = result;
        this.unlistenSignal();
        return result;
      },
      (error: unknown) => {
        this.ended = coerceError(error);
        this.unlistenSignal();
        throw error;
      },
    );
    return this.runPromise;
  }

  /**
   * Graceful stop: claims nothing more, waits up to `stopTimeoutMs` for running
   * attempts, then aborts the rest and releases their leases. Idempotent.
   */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopping = true;
      this.unlistenSignal();
      // Stopped before its run began: its roster place is given back here.
      if (!this.runPromise) void this.dispatch.leaveRoster();
      this.wake();
      // Claims in flight either start nothing (they are released) or end up in `local`.
      while (this.dispatch.claiming.size > 0) await new Promise((r) => setTimeout(r, 5));
      const all = () => Promise.allSettled([...this.dispatch.local.values()].map((l) => l.done));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, this.opts.stopTimeoutMs)))]);
      clearTimeout(timer);
      for (const l of this.dispatch.local.values()) l.abort.abort(new RunnerStoppedError());
      await all();
      await this.runPromise?.catch(() => undefined);
    })();
    return this.stopPromise;
  }

  private async loop(): Promise<RunResult> {
    const startedAt = Date.now();
    this.events.emit('container:started', {
      container: this.container,
      runnerId: this.runnerId,
      resumed: this.resumed,
      database: this.database,
    });
    if (this.definitionChanges.length > 0) {
      this.events.emit('container:definition-changed', { container: this.container, runnerId: this.runnerId, changes: this.definitionChanges });
    }
    this.poll.begin();
    while (!this.stopping) {
      try {
        const result = await this.step(startedAt);
        if (result) return result;
      } catch (error) {
        // Leases are judged only while the database answers: after an outage
        // every holder gets a whole lease again to show it is alive.
        this.leases.forget();
        if (error instanceof NotFoundError) {
          // Nothing is recorded for these attempts: there is nowhere to record it.
          this.dispatch.abortLocal(error);
          await this.dispatch.settled();
          throw error;
        }
        // A database hiccup must not end the run: running attempts keep their
        // heartbeats, and the next step reads everything again.
        this.sync.stale = true;
        this.events.emit('runner:error', { error: coerceError(error), context: 'scheduling' });
        await this.sleep(null);
      }
    }
    await this.dispatch.settled();
    await this.poll.watched();
    return { container: this.container, status: 'stopped', durationMs: Date.now() - startedAt };
  }

  /**
   * One scheduling step, from the runner's picture of the container: what
   * changed since the last step is planned (skips, undone skips), ready
   * tasks are claimed, and every `pollMs` the container document and the
   * tasks running elsewhere are read again. Returns the result once the
   * container has finished.
   */
  private async step(startedAt: number): Promise<RunResult | null> {
    await this.poll.refresh();
    const view = this.sync.view;
    const readAt = new Date(this.opts.clock.now());
    const halt = view.container.cancelRequestedAt !== null || (view.container.failFast && view.hasFailed);
    let plan: StepPlan;
    if (halt) {
      // A stopping container (cancelled, or failed fast): plan every task that is not succeeded.
      plan = planStep(this.leases.apply(view.activeSnapshot(readAt)), view.container.failFast, view);
      view.clearDirty();
      if (plan.halt) this.dispatch.abortLocal(new CancelledError(plan.halt.reason));
    } else {
      // Only what changed, and the tasks that depend on it (those a plan may
      // settle), in chunks with the event loop let through in between when
      // many changed at once (the first step of a large container). Without
      // a halt, each task's plan depends on it and its dependencies alone.
      plan = { done: false, outcome: null, halt: null, settle: [], ready: [], nextWakeAt: null, waitingForLease: [] };
      let first = true;
      for (const tasks of view.takeChanged(PLAN_CHUNK)) {
        if (!first) await yieldToLoop();
        first = false;
        plan.settle.push(...planStep({ container: view.container, tasks, readAt }, view.container.failFast, view).settle);
      }
    }
    if (plan.settle.length > 0) {
      await this.settle(plan);
      return null;
    }
    if (view.allTerminal && view.complete && this.dispatch.idle) {
      // Finished as far as this runner can tell: confirm it on everything as stored.
      if (!this.confirmed) {
        this.confirmed = true;
        await this.poll.watched();
        if (!(await this.sync.confirm())) return null;
      }
      const status = view.outcome();
      // A hint for raw readers only: every read derives the status from the tasks.
      await this.store.finishContainer(this.container, status);
      const durationMs = Date.now() - startedAt;
      this.events.emit('container:completed', { container: this.container, runnerId: this.runnerId, status, durationMs });
      return { container: this.container, status, durationMs };
    }
    this.confirmed = false;
    let wakeAt = this.leases.nextWakeAt;
    if (!halt) wakeAt = earliest(wakeAt, await this.dispatch.claimReady(readAt));
    // Idle with nothing to wait for and nothing seen running elsewhere: what
    // others do is only seen by reading everything (at the next poll). Idle
    // while waiting for a retry delay or watching others' tasks is not stalled.
    this.poll.stalled = this.dispatch.idle && wakeAt === null && this.poll.runningElsewhere().length === 0;
    await this.sleep(wakeAt);
    return null;
  }

  private async settle(plan: StepPlan): Promise<void> {
    await Promise.all(
      plan.settle.map(async (s) => {
        const ok = await this.store.settleTask(this.container, s.task, s.token, settlementOutcome(s));
        if (!ok) return this.sync.catchUp(s.task); // another writer moved it first
        this.sync.view.apply(s.task, [settlementEntry(this.container, s, new Date(this.opts.clock.now()))]);
        if (s.kind === 'reset') return; // an undone skip is no event
        if (s.kind === 'skipped') this.events.emit('task:skipped', { container: this.container, task: s.task, reason: s.reason });
        else this.events.emit('task:cancelled', { container: this.container, task: s.task, attempt: null, reason: s.reason });
      }),
    );
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    // A wake-up during a step is kept: the step that follows does not sleep.
    // The step runs after the current turn's I/O callbacks: attempts whose
    // handlers settle together (timers of one turn) free their slots before
    // it claims, and their outcomes and the new claims share one group
    // commit (see AppendBatcher), instead of a step per attempt.
    if (w) setImmediate(w);
    else this.wakePending = true;
  }

  /** Waits for a local attempt to end, the next read of the container (`pollMs` after the last), or `until`, whichever is first. */
  private sleep(until: Date | null): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    const untilTick = this.poll.untilDueMs();
    const ms = Math.max(0, Math.min(untilTick, until ? until.getTime() - this.opts.clock.now() + 5 : Infinity));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/**
 * Handlers by key, each wrapped (for tracing) when looked up rather than
 * all up front: a large definition has one handler per task, and a wrapper
 * each would be held for the whole run.
 */
class WrappedHandlers extends Map<string, TaskHandler<any, unknown>> {
  constructor(private readonly wrap: (fn: TaskHandler<any, unknown>) => TaskHandler<any, unknown>) {
    super();
  }

  override get(key: string): TaskHandler<any, unknown> | undefined {
    const fn = super.get(key);
    return fn && this.wrap(fn);
  }
}
