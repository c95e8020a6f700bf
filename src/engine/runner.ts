import pLimit, { type LimitFunction } from 'p-limit';
import { ContainerBuilder } from '../definition/define.js';
import { compileDynamicTasks } from '../definition/dynamic.js';
import { assertSafeName } from '../definition/names.js';
import type { ContainerDefinition, DynamicTaskSpec, TaskHandler } from '../definition/types.js';
import {
  CancelledError,
  coerceError,
  NotFoundError,
  RecoveryLimitError,
  RunnerFinishedError,
  RunnerStoppedError,
} from '../errors.js';
import { warnIfDefaultDatabase } from '../store/mongo/database-name.js';
import { defaultConnection } from '../store/mongo/models.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import type { Claim, ContainerSnapshot, ContainerStatus, TaskSnapshot, TaskState, TaskStore } from '../store/types.js';
import { executeAttempt, toPersistedError } from './attempt.js';
import { ensureContainer } from './ensure-container.js';
import { RunnerEvents, type RunnerEventMap, type RunnerEventName } from './events.js';
import { LeaseObserver } from './lease-observer.js';
import { claimedEntry, outcomeEntry, settlementEntry } from './entries.js';
import { containerOutcome, planStep, settlementOutcome, type StepPlan } from './plan.js';
import { ViewSync } from './view-sync.js';
import { resolveRunnerOptions, type ResolvedRunnerOptions, type RunnerOptions } from './runner-options.js';

/** How `run()` ended. */
export interface RunResult {
  container: string;
  /** The container's final status, or `stopped` when the runner was stopped first. */
  status: ContainerStatus | 'stopped';
  durationMs: number;
}

interface LocalAttempt {
  claim: Claim;
  group: string | null;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Executes the ready tasks of one container under concurrency limits, until
 * the container finishes or the runner is stopped. Any number of runners, in
 * any number of processes, may run the same container at once.
 */
export class Runner {
  /** Typed events; see {@link RunnerEventMap}. */
  readonly events = new RunnerEvents();
  private readonly local = new Map<string, LocalAttempt>();
  private readonly limit: LimitFunction;
  private readonly groupLimits = new Map<string, LimitFunction>();
  private readonly warnedNoHandler = new Set<string>();
  /** `task#token` of the silent leases already announced with `task:waiting-for-lease`. */
  private readonly announcedWaits = new Set<string>();
  private runPromise: Promise<RunResult> | null = null;
  /** How the run ended, once it has. */
  private ended: RunResult | Error | null = null;
  private stopPromise: Promise<void> | null = null;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  /** Judges other holders' leases on this runner's monotonic clock. */
  private readonly leases: LeaseObserver;
  /** Removes this runner's listener from `options.signal`. */
  private readonly unlistenSignal: () => void;
  /** Names staged by each local attempt (`task#token`), until it ends. */
  private readonly staged = new Map<string, Set<string>>();
  /** This runner's picture of the container, and the reads that keep it true. */
  private readonly sync: ViewSync;
  /** Tasks being claimed (name → concurrency group), counted against the limits. */
  private readonly claiming = new Map<string, string | null>();
  /** Tasks whose log must be read again before anything is decided about them. */
  private readonly catchUps = new Set<string>();
  /** A local attempt ended (or the stop began) while no step was waiting. */
  private wakePending = false;
  /** Monotonic time of the last read of the container (or of tasks running elsewhere). */
  private lastTickAt = 0;
  /** Nothing ran or was claimed here at the end of the last step: others' moves are only seen by reading everything. */
  private stalled = false;
  /** The picture said "finished" and everything was read again to confirm it. */
  private confirmed = false;
  /** The last judgement of leases held elsewhere: tasks to take over, and when the next lease may expire. */
  private lease: { recoverable: string[]; nextWakeAt: Date | null } = { recoverable: [], nextWakeAt: null };
  /** Running tasks held elsewhere, with their leases as this runner judged them. */
  private judged = new Map<string, TaskState>();
  /** Changes the definition made to the persisted container, announced when the run starts. */
  private definitionChanges: string[] = [];

  private constructor(
    private readonly store: TaskStore,
    /** Name of the container this runner executes. */
    readonly container: string,
    private readonly handlers: ReadonlyMap<string, TaskHandler<any, unknown>>,
    private readonly opts: ResolvedRunnerOptions,
    private readonly resumed: boolean,
    initial: ContainerSnapshot,
    signal?: AbortSignal,
  ) {
    this.sync = new ViewSync(store, container, initial.container.incarnation ?? '');
    this.sync.adopt(initial);
    this.limit = pLimit(opts.concurrency);
    for (const [group, n] of Object.entries(opts.groups)) this.groupLimits.set(group, pLimit(n));
    this.leases = new LeaseObserver(opts.leaseMs);
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
    const { resumed, changes, snapshot } = await ensureContainer(store, name, definition);
    const handlers = new Map<string, TaskHandler<any, unknown>>(Object.entries(options.handlers ?? {}));
    for (const [key, fn] of Object.entries(definition?.handlers ?? {})) handlers.set(key, fn);
    for (const t of definition?.tasks ?? []) if (t.handler) handlers.set(t.handlerName, t.handler);
    const runner = new Runner(store, name, handlers, opts, resumed, snapshot, options.signal);
    runner.definitionChanges = changes;
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
    this.runPromise ??= this.loop().then(
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
      this.wake();
      // Claims in flight either start nothing (they are released) or end up in `local`.
      while (this.claiming.size > 0) await new Promise((r) => setTimeout(r, 5));
      const all = () => Promise.allSettled([...this.local.values()].map((l) => l.done));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, this.opts.stopTimeoutMs)))]);
      clearTimeout(timer);
      for (const l of this.local.values()) l.abort.abort(new RunnerStoppedError());
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
    // The first step plans from what Runner.create read; leases seen in it are judged from now on.
    this.judgeLeases(performance.now(), performance.now());
    this.lastTickAt = performance.now();
    while (!this.stopping) {
      try {
        const result = await this.step(startedAt);
        if (result) return result;
      } catch (error) {
        // Leases are judged only while the database answers: after an outage
        // every holder gets a whole lease again to show it is alive.
        this.leases.forget();
        this.lease = { recoverable: [], nextWakeAt: null };
        if (error instanceof NotFoundError) {
          // Nothing is recorded for these attempts: there is nowhere to record it.
          this.abortLocal(error);
          await Promise.allSettled([...this.local.values()].map((l) => l.done));
          throw error;
        }
        // A database hiccup must not end the run: running attempts keep their
        // heartbeats, and the next step reads everything again.
        this.sync.stale = true;
        this.events.emit('runner:error', { error: coerceError(error), context: 'scheduling' });
        await this.sleep(null);
      }
    }
    await Promise.allSettled([...this.local.values()].map((l) => l.done));
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
    await this.refresh();
    const view = this.sync.view;
    const readAt = new Date(this.opts.clock.now());
    const halt = view.container.cancelRequestedAt !== null || (view.container.failFast && view.hasFailed);
    let plan: StepPlan;
    if (halt) {
      // A stopping container (cancelled, or failed fast): plan every task that is not succeeded.
      plan = planStep(this.withJudgedLeases(view.activeSnapshot(readAt)), view.container.failFast, view);
      view.dirty.clear();
      if (plan.halt) this.abortLocal(new CancelledError(plan.halt.reason));
    } else {
      // Only what changed, and the tasks that depend on it.
      const changed = new Set<string>();
      for (const name of view.dirty) {
        changed.add(name);
        for (const d of view.dependentsOf(name)) changed.add(d);
      }
      view.dirty.clear();
      const tasks = [...changed].map((n) => view.get(n)).filter((t): t is TaskSnapshot => t !== undefined && t.state.status !== 'running');
      plan = planStep({ container: view.container, tasks, readAt }, view.container.failFast, view);
    }
    if (plan.settle.length > 0) {
      await this.settle(plan);
      return null;
    }
    if (view.allTerminal && view.complete && this.local.size === 0 && this.claiming.size === 0) {
      // Finished as far as this runner can tell: confirm it on everything as stored.
      if (!this.confirmed) {
        this.confirmed = true;
        if (!(await this.sync.confirm())) return null;
      }
      const status = containerOutcome({ container: view.container, tasks: [...view.tasks.values()], readAt });
      // A hint for raw readers only: every read derives the status from the tasks.
      await this.store.finishContainer(this.container, status);
      const durationMs = Date.now() - startedAt;
      this.events.emit('container:completed', { container: this.container, runnerId: this.runnerId, status, durationMs });
      return { container: this.container, status, durationMs };
    }
    this.confirmed = false;
    let wakeAt = this.lease.nextWakeAt;
    if (!halt) wakeAt = earliest(wakeAt, await this.claimReady(readAt));
    this.stalled = this.local.size === 0 && this.claiming.size === 0;
    await this.sleep(wakeAt);
    return null;
  }

  /** Reads what may have changed: everything when the picture is stale, else every `pollMs` the container and the tasks running elsewhere. */
  private async refresh(): Promise<void> {
    for (const name of this.catchUps) {
      this.catchUps.delete(name);
      await this.sync.catchUp(name);
    }
    const due = performance.now() - this.lastTickAt >= this.opts.pollMs;
    if (!this.sync.stale && !due) return;
    const readStartedAt = performance.now();
    // Nothing to do here while others work: read everything, as other runners' moves are not seen otherwise.
    if (this.sync.stale || this.stalled) await this.sync.reload();
    else {
      await this.sync.checkHead();
      await this.sync.watch(this.runningElsewhere());
    }
    this.lastTickAt = performance.now();
    this.judgeLeases(readStartedAt, this.lastTickAt);
  }

  /** Tasks running in the picture that this runner does not run. */
  private runningElsewhere(): string[] {
    const names: string[] = [];
    for (const name of this.sync.view.active) {
      if (this.sync.view.get(name)?.state.status === 'running' && !this.local.has(name) && !this.claiming.has(name)) names.push(name);
    }
    return names;
  }

  /**
   * Judges the leases of tasks running elsewhere on this runner's own clock
   * (see {@link LeaseObserver}), from a read made between the given monotonic times.
   */
  private judgeLeases(readStartedAt: number, readEndedAt: number): void {
    const view = this.sync.view;
    const running = this.runningElsewhere().map((n) => view.get(n)!);
    const snapshot = { container: view.container, tasks: running, readAt: new Date(this.opts.clock.now()) };
    const judged = this.leases.judge(snapshot, readStartedAt, readEndedAt);
    this.judged = new Map(judged.tasks.map((t) => [t.record.name, t.state]));
    const plan = planStep(judged, view.container.failFast, view);
    this.announceWaits(plan);
    this.lease = { recoverable: plan.ready.filter((r) => r.recovered).map((r) => r.snapshot.record.name), nextWakeAt: plan.nextWakeAt };
  }

  /** The snapshot with the leases of tasks running elsewhere as this runner judged them. */
  private withJudgedLeases(snapshot: ContainerSnapshot): ContainerSnapshot {
    const tasks = snapshot.tasks.map((t) => {
      if (t.state.status !== 'running') return t;
      const judged = this.judged.get(t.record.name);
      if (judged && judged.token === t.state.token) return { ...t, state: judged };
      // Not judged yet (or run here): not expired for this reader.
      return { ...t, state: { ...t.state, leaseUntil: new Date(snapshot.readAt.getTime() + this.opts.leaseMs) } };
    });
    return { ...snapshot, tasks };
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

  /** Says once per lease that a task waits for a silent runner's lease to expire. */
  private announceWaits(plan: StepPlan): void {
    for (const w of plan.waitingForLease) {
      const key = `${w.task}#${w.token}`;
      if (w.holder === this.runnerId || this.local.has(w.task) || this.announcedWaits.has(key)) continue;
      this.announcedWaits.add(key);
      const { task, attempt, holder } = w;
      // The plan's expiry is this runner's judgement; the event also gives the written one, as status shows it.
      const expiresAt = this.sync.view.get(task)?.state.leaseUntil ?? w.expiresAt;
      this.events.emit('task:waiting-for-lease', { container: this.container, task, attempt, holder, expiresAt, takeoverAt: w.expiresAt });
    }
  }

  /**
   * Claims ready tasks up to the free slots, all at once (each attempt starts
   * as soon as its own claim is granted); returns the earliest time a task
   * held back by its retry delay becomes ready.
   */
  private async claimReady(readAt: Date): Promise<Date | null> {
    const view = this.sync.view;
    const claims: Array<Promise<void>> = [];
    const held: TaskSnapshot[] = [];
    let wakeAt: Date | null = null;
    const free = () => !this.stopping && this.local.size + this.claiming.size < this.opts.concurrency;
    // Tasks whose holder's lease this runner judged expired first, then the ready ones in declaration order.
    const recoverable = this.lease.recoverable;
    this.lease = { ...this.lease, recoverable: [] };
    for (const name of recoverable) {
      const t = view.get(name);
      if (!free() || !t || t.state.status !== 'running') continue;
      const handler = this.canStart(t);
      if (handler) claims.push(this.claimOne(t, handler, true));
    }
    while (free()) {
      const t = view.nextCandidate();
      if (!t) break;
      const { notBefore } = t.state;
      if (notBefore && notBefore.getTime() > readAt.getTime()) {
        wakeAt = earliest(wakeAt, notBefore);
        held.push(t);
        continue;
      }
      const handler = this.canStart(t);
      if (handler) claims.push(this.claimOne(t, handler, false));
      else held.push(t);
    }
    for (const t of held) view.requeue(t);
    await Promise.all(claims);
    return wakeAt;
  }

  /** The handler of a task this runner may start now (not running here, group not full), or undefined. */
  private canStart(t: TaskSnapshot): TaskHandler<any, unknown> | undefined {
    const name = t.record.name;
    if (this.local.has(name) || this.claiming.has(name) || !this.hasGroupCapacity(t.record.options.group)) return undefined;
    return this.handlerFor(t);
  }

  private async claimOne(t: TaskSnapshot, handler: TaskHandler<any, unknown>, recovered: boolean): Promise<void> {
    const name = t.record.name;
    this.claiming.set(name, t.record.options.group);
    try {
      const claimSentAt = performance.now();
      const asked = {
        runnerId: this.runnerId,
        attempt: t.state.attempt + 1,
        leaseMs: this.opts.leaseMs,
        heartbeatMs: this.opts.heartbeatMs,
        checkpoint: t.state.checkpoint,
        // A resumed attempt starts where its checkpoint left off, not at 0 %.
        progress: t.state.checkpoint === undefined || t.state.checkpoint === null ? 0 : t.state.checkpointProgress,
      };
      const claim = await this.store.claimTask(this.container, name, t.state.token, asked);
      if (!claim) return await this.sync.catchUp(name); // another runner claimed it first
      this.sync.view.apply(name, [claimedEntry(claim, asked)]);
      if (this.stopping) {
        // stop() began while the claim was in flight: give it back, do not start it.
        return await this.release(claim);
      }
      if (recovered && t.state.recoveries >= this.opts.maxRecoveries) return await this.failRecoveryLimit(claim, t);
      const deps = await this.sync.dependencyOutputs(t);
      this.start(claim, t, handler, recovered, deps, claimSentAt);
    } catch (error) {
      // The claim's fate is unknown: read the task's log again before deciding anything about it.
      this.catchUps.add(name);
      this.events.emit('runner:error', { error: coerceError(error), context: 'scheduling' });
    } finally {
      this.claiming.delete(name);
    }
  }

  /** Gives a claim back unstarted (released, so any runner claims it at once). */
  private async release(claim: Claim): Promise<void> {
    try {
      const at = new Date(this.opts.clock.now());
      await this.store.finishAttempt(claim, { kind: 'released' }, at);
      this.sync.view.apply(claim.task, [outcomeEntry(claim, { kind: 'released' }, at)]);
      this.events.emit('task:released', { container: this.container, task: claim.task, attempt: claim.attempt });
    } catch (error) {
      this.catchUps.add(claim.task);
      this.events.emit('runner:error', { error: coerceError(error), context: `releasing task "${claim.task}" after stop()` });
    }
  }

  private start(
    claim: Claim,
    t: TaskSnapshot,
    handler: TaskHandler<any, unknown>,
    recovered: boolean,
    deps: Record<string, unknown>,
    claimSentAt: number,
  ): void {
    const abort = new AbortController();
    const group = t.record.options.group;
    const name = t.record.name;
    const attempt = () =>
      executeAttempt({
        store: this.store,
        events: this.events,
        claim,
        handler,
        options: t.record.options,
        input: t.record.input,
        deps,
        lastCheckpoint: t.state.checkpoint ?? undefined,
        failuresBefore: t.state.failures,
        recovered,
        leaseMs: this.opts.leaseMs,
        heartbeatMs: this.opts.heartbeatMs,
        checkpointIntervalMs: this.opts.checkpointIntervalMs,
        runnerSignal: abort.signal,
        claimSentAt,
        clock: this.opts.clock,
        addTasks: (specs) => this.addDynamicTasks(name, claim.token, specs),
      });
    const groupLimit = group ? this.groupLimits.get(group) : undefined;
    const done = this.limit(() => (groupLimit ? groupLimit(attempt) : attempt()))
      .then(async (recorded) => {
        // What this attempt wrote moves the picture on; when its fate is unknown, read it.
        if (recorded) this.sync.view.apply(name, [outcomeEntry(claim, recorded.outcome, recorded.at)]);
        else this.catchUps.add(name);
        // The next attempt resumes from the checkpoint this one left in its claim entry.
        if (recorded && recorded.outcome.kind !== 'succeeded') {
          await this.sync.refreshCheckpoint(name, claim.token).catch(() => (this.sync.stale = true));
        }
        // Tasks it staged exist from its success on: read them.
        if (recorded?.outcome.kind === 'succeeded' && this.staged.has(`${name}#${claim.token}`)) this.sync.stale = true;
      })
      .finally(() => {
        this.local.delete(name);
        this.staged.delete(`${name}#${claim.token}`);
        this.wake();
      });
    this.local.set(name, { claim, group, abort, done });
  }

  private async failRecoveryLimit(claim: Claim, t: TaskSnapshot): Promise<void> {
    const error = toPersistedError(new RecoveryLimitError(t.record.name, t.state.recoveries + 1), claim.attempt);
    try {
      const at = new Date(this.opts.clock.now());
      const outcome = { kind: 'failed', error, retryAt: null } as const;
      await this.store.finishAttempt(claim, outcome, at);
      this.sync.view.apply(claim.task, [outcomeEntry(claim, outcome, at)]);
      this.events.emit('task:failed', { container: this.container, task: t.record.name, attempt: claim.attempt, error });
    } catch (e) {
      this.catchUps.add(claim.task);
      this.events.emit('runner:error', { error: e as Error, context: `failing task "${t.record.name}"` });
    }
  }

  /** Stages tasks under the attempt of `addedBy` claimed at `token`: they exist once its success is recorded. */
  private async addDynamicTasks(addedBy: string, token: number, specs: DynamicTaskSpec[]): Promise<{ added: string[] }> {
    // What this attempt staged before counts as existing for it (others do not see it yet).
    const key = `${addedBy}#${token}`;
    const own = this.staged.get(key) ?? new Set<string>();
    const existing = new Set([...this.sync.view.tasks.keys(), ...own]);
    const compiled = compileDynamicTasks(specs, existing, new Set(this.handlers.keys()));
    const added = await this.store.addTasks(
      this.container,
      compiled.map((t) => ({ ...t, dynamic: true, addedBy, stagedBy: token })),
    );
    for (const t of compiled) own.add(t.name);
    this.staged.set(key, own);
    return { added };
  }

  private handlerFor(t: TaskSnapshot): TaskHandler<any, unknown> | undefined {
    const handler = this.handlers.get(t.record.handler);
    if (!handler && !this.warnedNoHandler.has(t.record.name)) {
      this.warnedNoHandler.add(t.record.name);
      this.events.emit('runner:error', {
        error: new NotFoundError('handler', t.record.handler, `task "${t.record.name}" waits for a runner that has it`),
        context: 'binding handlers',
      });
    }
    return handler;
  }

  private hasGroupCapacity(group: string | null): boolean {
    const limit = group ? this.groupLimits.get(group) : undefined;
    if (!limit) return true;
    let inGroup = 0;
    for (const l of this.local.values()) if (l.group === group) inGroup += 1;
    for (const g of this.claiming.values()) if (g === group) inGroup += 1;
    return inGroup < limit.concurrency;
  }

  private abortLocal(reason: Error): void {
    for (const l of this.local.values()) if (!l.abort.signal.aborted) l.abort.abort(reason);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    // A wake-up during a step is kept: the step that follows does not sleep.
    if (w) w();
    else this.wakePending = true;
  }

  /** Waits for a local attempt to end, the next read of the container (`pollMs` after the last), or `until`, whichever is first. */
  private sleep(until: Date | null): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    const untilTick = this.opts.pollMs - (performance.now() - this.lastTickAt);
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

function earliest(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.getTime() <= b.getTime() ? a : b;
}
