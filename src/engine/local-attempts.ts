import { compileDynamicTasks } from '../definition/dynamic.js';
import type { DynamicTaskSpec, TaskHandler } from '../definition/types.js';
import { coerceError } from '../errors.js';
import type { Claim, ClaimOrder, HeldSlots, TaskSnapshot, TaskStore } from '../store/types.js';
import { outcomeEntry } from '../store/transition.js';
import { executeAttempt, toPersistedError } from './attempt.js';
import type { RunnerEvents } from './events.js';
import { fenceMarginMs } from './lease-fence.js';
import { lapseRiskDelayMs, LoopWatch } from './loop-watch.js';
import type { ResolvedRunnerOptions } from './runner-options.js';
import type { ViewSync } from './view-sync.js';

/** An attempt running in this process. */
export interface LocalAttempt {
  claim: Claim;
  group: string | null;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * The attempts a runner started, from their claim to their recorded outcome:
 * starts them, moves the picture on with what they record, gives their
 * shared slots back when they end, and ends claims that must not run
 * (released unstarted, or failed at a limit).
 */
export class LocalAttempts {
  /** Attempts running here, by task name. */
  readonly local = new Map<string, LocalAttempt>();
  /**
   * Tasks whose handler runs here now, with the claims being made: what
   * `concurrency` counts. An attempt whose handler has settled stays in
   * {@link local} while its outcome is written, and its slot goes to the
   * next claim only behind that outcome (see {@link takeHandover}).
   */
  readonly busy = new Set<string>();
  /** Attempts whose handler has settled and whose outcome is being written, their slot not taken yet (oldest first). */
  private readonly handovers: string[] = [];
  /** Names staged by each local attempt (`task#token`), until it ends. */
  private readonly staged = new Map<string, Set<string>>();
  /** Event-loop delays, watched while attempts run. */
  private readonly loopWatch: LoopWatch;

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    private readonly handlers: ReadonlyMap<string, TaskHandler<any, unknown>>,
    private readonly opts: ResolvedRunnerOptions,
    private readonly events: RunnerEvents,
    private readonly sync: ViewSync,
    /** Tasks whose log must be read again before anything is decided about them (read by the runner's next step). */
    private readonly catchUps: Set<string>,
    private readonly hooks: { wake(): void; giveBack(held: HeldSlots | null): Promise<void> },
  ) {
    const riskMs = lapseRiskDelayMs(opts.leaseMs, opts.heartbeatMs, fenceMarginMs(opts.leaseMs, opts.heartbeatMs));
    this.loopWatch = new LoopWatch(Math.max(10, Math.min(100, Math.floor(opts.heartbeatMs / 4))), riskMs, (delayMs) =>
      // After the attempts checked their leases: those that lapsed are fenced off by now.
      this.events.emit('runner:loop-blocked', {
        container: this.container,
        runnerId: opts.runnerId,
        delayMs: Math.round(delayMs),
        leaseMs: opts.leaseMs,
        running: [...this.local.keys()],
      }),
    );
  }

  /**
   * Attempts here in `group` until their outcome is recorded: a group's
   * per-runner limit does not hand slots over (a claim of another group may
   * take the slot, so the outcome is still counted where it belongs).
   */
  busyIn(group: string): number {
    let n = 0;
    for (const l of this.local.values()) if (l.group === group) n += 1;
    return n;
  }

  /**
   * The slot of an attempt whose handler has settled, for a claim made now:
   * the claim is written behind that attempt's outcome, so the database never
   * shows both running (the slot was counted free when the handler settled,
   * and every claim takes a handed-over slot while there is one). Undefined
   * when none is waiting.
   */
  takeHandover(): ClaimOrder | undefined {
    for (let name = this.handovers.shift(); name !== undefined; name = this.handovers.shift()) {
      const l = this.local.get(name);
      if (l) return { outcomeOf: l.claim, over: l.done };
    }
    return undefined;
  }

  /** Gives a slot taken with {@link takeHandover} back, for a claim that was not granted (its attempt may still be writing). */
  returnHandover(order: ClaimOrder): void {
    const name = order.outcomeOf.task;
    if (this.local.get(name)?.claim === order.outcomeOf && !this.handovers.includes(name)) this.handovers.unshift(name);
  }

  /** Settles once every local attempt has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.local.values()].map((l) => l.done));
  }

  /** Gives a claim back unstarted (released, so any runner claims it at once). */
  async release(claim: Claim): Promise<void> {
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

  start(
    claim: Claim,
    t: TaskSnapshot,
    handler: TaskHandler<any, unknown>,
    recovered: boolean,
    deps: Record<string, unknown>,
    claimSentAt: number,
    slots: HeldSlots | null,
  ): void {
    const abort = new AbortController();
    const group = t.record.options.group;
    const name = t.record.name;
    // The slot stays held until the outcome is recorded: freed when the
    // handler settled, the next claim could land before this outcome, and the
    // database would show more running tasks than this runner may run
    // (test runner.order-and-concurrency).
    this.busy.add(name);
    // Handed over only when this success can make nothing ready: a task it
    // staged or a dependent may outrank what the next claim would take
    // (priorities), and a failure may make the task itself ready again.
    const handOver = (succeeded: boolean) => {
      if (!succeeded || this.staged.has(`${name}#${claim.token}`)) return;
      if (this.sync.view.dependentsOf(name).some((d) => this.sync.view.get(d)?.state.status === 'pending')) return;
      if (!this.busy.delete(name)) return;
      this.handovers.push(name);
      this.hooks.wake();
    };
    const settled = () => {
      const i = this.handovers.indexOf(name);
      if (i >= 0) this.handovers.splice(i, 1);
      if (this.busy.delete(name)) this.hooks.wake();
    };
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
        loopWatch: this.loopWatch,
        onHandlerSettled: handOver,
      });
    const done = attempt()
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
      .finally(async () => {
        settled();
        // The attempt is over: its shared slots go back.
        await this.hooks.giveBack(slots);
        this.local.delete(name);
        this.staged.delete(`${name}#${claim.token}`);
        this.hooks.wake();
      });
    this.local.set(name, { claim, group, abort, done });
  }

  /** Fails a task just claimed for good, without running it: it reached a limit (recoveries, lapses). */
  async failAtLimit(claim: Claim, t: TaskSnapshot, limit: Error): Promise<void> {
    const error = toPersistedError(limit, claim.attempt);
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
    const view = this.sync.view;
    const existing = { has: (task: string) => view.has(task) || own.has(task) };
    const compiled = compileDynamicTasks(specs, existing, this.handlers);
    const added = await this.store.addTasks(
      this.container,
      compiled.map((t) => ({ ...t, dynamic: true, addedBy, stagedBy: token })),
    );
    for (const t of compiled) own.add(t.name);
    this.staged.set(key, own);
    return { added };
  }

  abortLocal(reason: Error): void {
    for (const l of this.local.values()) if (!l.abort.signal.aborted) l.abort.abort(reason);
  }
}
