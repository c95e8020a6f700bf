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
import type { Claim, ContainerSnapshot, ContainerStatus, TaskSnapshot, TaskStore } from '../store/types.js';
import { executeAttempt, toPersistedError } from './attempt.js';
import { ensureContainer } from './ensure-container.js';
import { RunnerEvents, type RunnerEventMap, type RunnerEventName } from './events.js';
import { LeaseObserver } from './lease-observer.js';
import { planStep, settlementOutcome, type StepPlan } from './plan.js';
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
  /** The container's incarnation when this runner first read it. */
  private incarnation: string | undefined;
  /** Changes the definition made to the persisted container, announced when the run starts. */
  private definitionChanges: string[] = [];

  private constructor(
    private readonly store: TaskStore,
    /** Name of the container this runner executes. */
    readonly container: string,
    private readonly handlers: ReadonlyMap<string, TaskHandler<any, unknown>>,
    private readonly opts: ResolvedRunnerOptions,
    private readonly resumed: boolean,
    signal?: AbortSignal,
  ) {
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
    const { resumed, changes } = await ensureContainer(store, name, definition);
    const handlers = new Map<string, TaskHandler<any, unknown>>(Object.entries(options.handlers ?? {}));
    for (const [key, fn] of Object.entries(definition?.handlers ?? {})) handlers.set(key, fn);
    for (const t of definition?.tasks ?? []) if (t.handler) handlers.set(t.handlerName, t.handler);
    const runner = new Runner(store, name, handlers, opts, resumed, options.signal);
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
          this.abortLocal(error);
          await Promise.allSettled([...this.local.values()].map((l) => l.done));
          throw error;
        }
        // A database hiccup must not end the run: running attempts keep their
        // heartbeats, and the next step reads everything again.
        this.events.emit('runner:error', { error: coerceError(error), context: 'scheduling' });
        await this.sleep(null);
      }
    }
    await Promise.allSettled([...this.local.values()].map((l) => l.done));
    return { container: this.container, status: 'stopped', durationMs: Date.now() - startedAt };
  }

  /** One scheduling step; returns the result once the container has finished. */
  private async step(startedAt: number): Promise<RunResult | null> {
    const readStartedAt = performance.now();
    const read = await this.store.loadSnapshot(this.container);
    if (!read) throw new NotFoundError('container', this.container, 'it was deleted while running');
    // A container deleted and created again under the same name is another run.
    this.incarnation ??= read.container.incarnation ?? '';
    if ((read.container.incarnation ?? '') !== this.incarnation) {
      throw new NotFoundError('container', this.container, 'it was deleted and created again while running');
    }
    // Leases of other runners are judged on this runner's own clock.
    const snapshot = this.leases.judge(read, readStartedAt, performance.now());
    const plan = planStep(snapshot, snapshot.container.failFast);
    this.announceWaits(plan, read);
    if (plan.halt) this.abortLocal(new CancelledError(plan.halt.reason));
    if (plan.settle.length > 0) {
      await this.settle(plan);
      return null;
    }
    if (plan.done && this.local.size === 0) {
      const status = plan.outcome!;
      // A hint for raw readers only: every read derives the status from the tasks.
      await this.store.finishContainer(this.container, status);
      const durationMs = Date.now() - startedAt;
      this.events.emit('container:completed', { container: this.container, runnerId: this.runnerId, status, durationMs });
      return { container: this.container, status, durationMs };
    }
    if (!plan.halt) await this.claimReady(plan, snapshot);
    await this.sleep(plan.nextWakeAt);
    return null;
  }

  private async settle(plan: StepPlan): Promise<void> {
    for (const s of plan.settle) {
      const ok = await this.store.settleTask(this.container, s.task, s.token, settlementOutcome(s));
      if (!ok || s.kind === 'reset') continue; // another runner moved it first; an undone skip is no event
      if (s.kind === 'skipped') this.events.emit('task:skipped', { container: this.container, task: s.task, reason: s.reason });
      else this.events.emit('task:cancelled', { container: this.container, task: s.task, attempt: null, reason: s.reason });
    }
  }

  /** Says once per lease that a task waits for a silent runner's lease to expire. */
  private announceWaits(plan: StepPlan, written: ContainerSnapshot): void {
    for (const w of plan.waitingForLease) {
      const key = `${w.task}#${w.token}`;
      if (w.holder === this.runnerId || this.local.has(w.task) || this.announcedWaits.has(key)) continue;
      this.announcedWaits.add(key);
      const { task, attempt, holder } = w;
      // The plan's expiry is this runner's judgement; the event also gives the written one, as status shows it.
      const expiresAt = written.tasks.find((t) => t.record.name === task)?.state.leaseUntil ?? w.expiresAt;
      this.events.emit('task:waiting-for-lease', { container: this.container, task, attempt, holder, expiresAt, takeoverAt: w.expiresAt });
    }
  }

  private async claimReady(plan: StepPlan, snapshot: ContainerSnapshot): Promise<void> {
    // Outputs by task name, built once per step and only when something starts.
    let outputs: Map<string, unknown> | undefined;
    for (const { snapshot: t, recovered } of plan.ready) {
      // Counted synchronously from local attempts: p-limit only updates its
      // counters once the queued function starts, and a claim must never wait
      // in a queue (its lease would expire without heartbeats).
      if (this.stopping || this.local.size >= this.opts.concurrency) return;
      const { name, options } = { name: t.record.name, options: t.record.options };
      if (this.local.has(name) || !this.hasGroupCapacity(options.group)) continue;
      const handler = this.handlerFor(t);
      if (!handler) continue;
      const claimSentAt = performance.now();
      const claim = await this.store.claimTask(this.container, name, t.state.token, {
        runnerId: this.runnerId,
        attempt: t.state.attempt + 1,
        leaseMs: this.opts.leaseMs,
        heartbeatMs: this.opts.heartbeatMs,
        checkpoint: t.state.checkpoint,
        // A resumed attempt starts where its checkpoint left off, not at 0 %.
        progress: t.state.checkpoint === undefined || t.state.checkpoint === null ? 0 : t.state.checkpointProgress,
      });
      if (!claim) continue; // another runner claimed it first
      if (this.stopping) {
        // stop() began while the claim was in flight: give it back, do not start it.
        await this.release(claim);
        return;
      }
      if (recovered && t.state.recoveries >= this.opts.maxRecoveries) {
        await this.failRecoveryLimit(claim, t);
        continue;
      }
      outputs ??= new Map(snapshot.tasks.map((s) => [s.record.name, s.state.output]));
      this.start(claim, t, handler, recovered, outputs, claimSentAt);
    }
  }

  /** Gives a claim back unstarted (released, so any runner claims it at once). */
  private async release(claim: Claim): Promise<void> {
    try {
      await this.store.finishAttempt(claim, { kind: 'released' }, new Date(this.opts.clock.now()));
      this.events.emit('task:released', { container: this.container, task: claim.task, attempt: claim.attempt });
    } catch (error) {
      this.events.emit('runner:error', { error: coerceError(error), context: `releasing task "${claim.task}" after stop()` });
    }
  }

  private start(
    claim: Claim,
    t: TaskSnapshot,
    handler: TaskHandler<any, unknown>,
    recovered: boolean,
    outputs: ReadonlyMap<string, unknown>,
    claimSentAt: number,
  ): void {
    const abort = new AbortController();
    const group = t.record.options.group;
    const attempt = () =>
      executeAttempt({
        store: this.store,
        events: this.events,
        claim,
        handler,
        options: t.record.options,
        input: t.record.input,
        deps: Object.fromEntries(t.record.dependsOn.map((d) => [d, outputs.get(d) ?? null])),
        lastCheckpoint: t.state.checkpoint ?? undefined,
        failuresBefore: t.state.failures,
        recovered,
        leaseMs: this.opts.leaseMs,
        heartbeatMs: this.opts.heartbeatMs,
        checkpointIntervalMs: this.opts.checkpointIntervalMs,
        runnerSignal: abort.signal,
        claimSentAt,
        clock: this.opts.clock,
        addTasks: (specs) => this.addDynamicTasks(t.record.name, claim.token, specs),
      });
    const groupLimit = group ? this.groupLimits.get(group) : undefined;
    const done = this.limit(() => (groupLimit ? groupLimit(attempt) : attempt())).finally(() => {
      this.local.delete(t.record.name);
      this.staged.delete(`${t.record.name}#${claim.token}`);
      this.wake();
    });
    this.local.set(t.record.name, { claim, group, abort, done });
  }

  private async failRecoveryLimit(claim: Claim, t: TaskSnapshot): Promise<void> {
    const error = toPersistedError(new RecoveryLimitError(t.record.name, t.state.recoveries + 1), claim.attempt);
    try {
      await this.store.finishAttempt(claim, { kind: 'failed', error, retryAt: null });
      this.events.emit('task:failed', { container: this.container, task: t.record.name, attempt: claim.attempt, error });
    } catch (e) {
      this.events.emit('runner:error', { error: e as Error, context: `failing task "${t.record.name}"` });
    }
  }

  /** Stages tasks under the attempt of `addedBy` claimed at `token`: they exist once its success is recorded. */
  private async addDynamicTasks(addedBy: string, token: number, specs: DynamicTaskSpec[]): Promise<{ added: string[] }> {
    const snapshot = await this.store.loadSnapshot(this.container);
    // What this attempt staged before counts as existing for it (others do not see it yet).
    const key = `${addedBy}#${token}`;
    const own = this.staged.get(key) ?? new Set<string>();
    const existing = new Set([...(snapshot?.tasks.map((t) => t.record.name) ?? []), ...own]);
    const compiled = compileDynamicTasks(specs, existing, new Set(this.handlers.keys()));
    const added = await this.store.addTasks(
      this.container,
      compiled.map((t) => ({ ...t, dynamic: true, addedBy, stagedBy: token })),
    );
    for (const t of compiled) own.add(t.name);
    this.staged.set(key, own);
    this.wake();
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
    return inGroup < limit.concurrency;
  }

  private abortLocal(reason: Error): void {
    for (const l of this.local.values()) if (!l.abort.signal.aborted) l.abort.abort(reason);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** Waits for a local attempt to end, the poll interval, or `until`, whichever is first. */
  private sleep(until: Date | null): Promise<void> {
    if (this.stopping) return Promise.resolve();
    const ms = Math.max(0, Math.min(this.opts.pollMs, until ? until.getTime() - this.opts.clock.now() + 5 : Infinity));
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
