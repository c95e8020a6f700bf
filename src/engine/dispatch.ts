import type { TaskHandler } from '../definition/types.js';
import { coerceError, LeaseLapseLimitError, NotFoundError, RecoveryLimitError } from '../errors.js';
import type { HeldSlots, SlotId, TaskSnapshot, TaskStore } from '../store/types.js';
import { claimedEntry, type Transition } from '../store/transition.js';
import type { RunnerEvents } from './events.js';
import type { LeaseJudgement } from './lease-judgement.js';
import type { ResolvedRunnerOptions } from './runner-options.js';
import type { ViewSync } from './view-sync.js';
import { Sweep } from './sweep.js';
import { Roster } from './roster.js';
import { fenceMarginMs } from './lease-fence.js';
import { SharedLimits } from './shared-limits.js';
import { AffinityJudge } from './affinity.js';
import { LocalAttempts, type LocalAttempt } from './local-attempts.js';

export type { LocalAttempt } from './local-attempts.js';

/**
 * A runner reads everything again after losing `2 × concurrency` claims in a
 * row (no claim won between them), or one per this many tasks of the
 * container if more: its picture is then wrong wherever it looks (others ran
 * what it sees pending, typically at the end of a run). A lost claim costs
 * one read by `_id` (the store reads the winner's entry back anyway);
 * reading everything costs the whole container, and losses spread over a
 * run (sweeps that met) are not worth it.
 */
const RELOAD_AFTER_LOST_SHARE = 64;

/**
 * The runner's hands: claims ready tasks up to the concurrency limits (in
 * parallel, each attempt starting as soon as its own claim is granted),
 * starts their attempts and moves the picture on with what they record.
 */
export class Dispatcher {
  /** Tasks being claimed (name → concurrency group), counted against the limits. */
  readonly claiming = new Map<string, string | null>();
  /** Attempts started here, until their outcome is recorded. */
  private readonly attempts: LocalAttempts;
  /** Per-runner limits of the groups (`groups: { name: n }`). */
  private readonly groupLimits = new Map<string, number>();
  private readonly warnedNoHandler = new Set<string>();
  /** Claims lost to other runners in a row (none won since), since the picture was last marked stale for them. */
  private lostClaims = 0;
  /** Where this runner's sweep over the ready set starts. */
  private readonly sweep = new Sweep();
  /** The runners of the container as they announce themselves (this runner's place steers its first sweep). */
  private readonly roster: Roster;
  /** The roster was read again before the first sweep (see {@link claimReady}). */
  private rosterReread = false;
  /** The roster's renewal in flight, if any. */
  private rosterRefresh: Promise<void> | null = null;
  /** Other runners seen holding tasks of this container (runnerId → monotonic time last seen). */
  private readonly rivals = new Map<string, number>();
  /** Limits shared with the other runners of the container (slot documents). */
  private readonly shared: SharedLimits;
  /** Which runner may claim tasks with an affinity key. */
  private readonly affinity: AffinityJudge;
  /** Tasks picked in this step as takeovers of another runner's affinity key (announced once claimed). */
  private readonly takeovers = new Map<string, { key: string; from: string; waitedMs: number }>();

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    private readonly handlers: ReadonlyMap<string, TaskHandler<any, unknown>>,
    private readonly opts: ResolvedRunnerOptions,
    private readonly events: RunnerEvents,
    private readonly sync: ViewSync,
    private readonly leases: LeaseJudgement,
    /** Tasks whose log must be read again before anything is decided about them (read by the runner's next step). */
    private readonly catchUps: Set<string>,
    private readonly hooks: { isStopping(): boolean; wake(): void },
  ) {
    this.shared = new SharedLimits(store, container, opts, (runnerId) => this.noteRival(runnerId));
    this.roster = new Roster(store, container, opts);
    this.affinity = new AffinityJudge(opts.runnerId, opts.affinityWaitMs, opts.clock);
    for (const [group, n] of Object.entries(opts.groups)) this.groupLimits.set(group, n);
    this.attempts = new LocalAttempts(store, container, handlers, opts, events, sync, catchUps, {
      wake: () => this.hooks.wake(),
      giveBack: (held) => this.giveBack(held),
    });
  }

  /** Attempts running here, by task name. */
  get local(): ReadonlyMap<string, LocalAttempt> {
    return this.attempts.local;
  }

  /** Aborts every attempt running here with `reason`. */
  abortLocal(reason: Error): void {
    this.attempts.abortLocal(reason);
  }

  /** Nothing runs or is being claimed here. */
  get idle(): boolean {
    return this.local.size === 0 && this.claiming.size === 0;
  }

  /** Settles once every local attempt has ended. */
  async settled(): Promise<void> {
    await this.attempts.settled();
  }

  /**
   * Claims ready tasks up to the free slots, all at once (each attempt starts
   * as soon as its own claim is granted); returns the earliest time a task
   * held back by its retry delay becomes ready.
   */
  async claimReady(readAt: Date): Promise<Date | null> {
    const view = this.sync.view;
    const claims: Array<Promise<void>> = [];
    const held: TaskSnapshot[] = [];
    let wakeAt: Date | null = null;
    const free = () => !this.hooks.isStopping() && this.attempts.busy.size + this.claiming.size < this.opts.concurrency;
    // Tasks whose holder's lease this runner judged expired first, then the ready ones by priority and declaration order.
    // Limits shared with other runners: what is held now, read once per step.
    if (this.shared.enabled && free()) await this.shared.refresh();
    for (const name of this.leases.takeRecoverable()) {
      const t = view.get(name);
      if (!free() || !t || t.state.status !== 'running') continue;
      const handler = this.canStart(t);
      const slots = handler ? this.shared.reserve(t.record.options.group) : null;
      if (handler && slots) claims.push(this.claimOne(t, handler, true, slots));
    }
    // Startable candidates, by priority then in the order of this runner's sweep, up to its free slots.
    // Before the first sweep, the roster is read again: runners that joined
    // with this one know each other only now, and their shares are by rank.
    if (!this.rosterReread && this.roster.place >= 0) {
      this.rosterReread = true;
      await this.rereadRoster();
    }
    // In the background: a renewal never delays a claim (what it reads counts from the next step).
    if (free()) this.rosterRefresh ??= this.refreshRoster().finally(() => (this.rosterRefresh = null));
    const seen = this.activePeers();
    // Rate tokens are split among the runners seen at work (a runner on the
    // roster that claims nothing under the limit would leave its share unused).
    this.shared.peers = seen;
    const peers = [...new Set([...seen, ...this.roster.runnerIds])];
    const probe = this.sweep.place(view, peers.length, this.roster);
    const window = this.hooks.isStopping() ? 0 : probe ? 1 : this.opts.concurrency - this.attempts.busy.size - this.claiming.size;
    const picked: Array<{ t: TaskSnapshot; handler: TaskHandler<any, unknown>; slots: SlotId[] }> = [];
    this.affinity.beginStep();
    while (picked.length < window) {
      const t = view.nextCandidate();
      if (!t) break;
      // Where another runner's first sweep started: the next step probes it first.
      if (picked.length > 0 && this.sweep.stopsBefore(t.record.order)) {
        held.push(t);
        break;
      }
      const { notBefore } = t.state;
      if (notBefore && notBefore.getTime() > readAt.getTime()) {
        wakeAt = earliest(wakeAt, notBefore);
        held.push(t);
        continue;
      }
      const key = t.record.options.affinity;
      if (key !== undefined && !this.local.has(t.record.name) && !this.claiming.has(t.record.name)) {
        // Another runner holds this task's key (its bytes, its local state): leave it the task while it is alive.
        const d = this.affinity.judge(view, t, this.sync.lastFullReadAt, performance.now());
        if (!d.claim) {
          if (d.needsFullRead) this.sync.stale = true;
          if (d.retryAt) wakeAt = earliest(wakeAt, d.retryAt);
          held.push(t);
          continue;
        }
        if (d.takeoverFrom !== null) this.takeovers.set(t.record.name, { key, from: d.takeoverFrom, waitedMs: d.waitedMs });
        else this.takeovers.delete(t.record.name);
      }
      const handler = this.canStart(t, picked);
      const slots = handler ? this.shared.reserve(t.record.options.group) : null;
      if (handler && slots) picked.push({ t, handler, slots });
      else held.push(t);
    }
    if (picked.length > 0) this.sweep.picked(picked[picked.length - 1]!.t.record.order);
    for (let i = 0; i < picked.length && free(); i++) {
      const p = picked[i]!;
      if (this.hasGroupCapacity(p.t.record.options.group)) claims.push(this.claimOne(p.t, p.handler, false, p.slots));
      else {
        this.shared.unreserve(p.slots);
        held.push(p.t);
      }
    }
    for (let i = claims.length; i < picked.length; i++) {
      this.shared.unreserve(picked[i]!.slots);
      held.push(picked[i]!.t);
    }
    for (const t of held) view.requeue(t);
    await Promise.all(claims);
    const probed = probe ? picked[0] : undefined;
    if (probed && claims.length > 0) {
      const now = view.get(probed.t.record.name)?.state;
      const won = now !== undefined && now.token > probed.t.state.token && now.runnerId === this.opts.runnerId;
      // Won: the sweep holds here, the other free slots claim on at once. Lost too often: read everything.
      if (this.sweep.probed(won)) this.sync.stale = true;
      if (won) this.hooks.wake();
    }
    // A group held back by its rate limit: wake when its next window opens.
    const rateWaitMs = this.shared.rateWakeInMs();
    return rateWaitMs === null ? wakeAt : earliest(wakeAt, new Date(this.opts.clock.now() + rateWaitMs));
  }

  /**
   * The handler of a task this runner may start now (not running here, group
   * not full counting the tasks already `picked` in this step), or undefined.
   */
  private canStart(t: TaskSnapshot, picked: ReadonlyArray<{ t: TaskSnapshot }> = []): TaskHandler<any, unknown> | undefined {
    const name = t.record.name;
    const group = t.record.options.group;
    const pickedInGroup = group ? picked.filter((p) => p.t.record.options.group === group).length : 0;
    if (this.local.has(name) || this.claiming.has(name) || !this.hasGroupCapacity(group, pickedInGroup)) return undefined;
    return this.handlerFor(t);
  }

  /** Notes another runner holding a task of this container (seen in a read or a lost claim). */
  noteRival(runnerId: string | null): void {
    if (runnerId !== null && runnerId !== this.opts.runnerId) this.rivals.set(runnerId, performance.now());
  }

  /** The runners seen at work on the container within the last few polls (this one included). */
  private activePeers(): string[] {
    const since = performance.now() - 5 * this.opts.pollMs;
    for (const [id, at] of this.rivals) if (at < since) this.rivals.delete(id);
    return [this.opts.runnerId, ...this.rivals.keys()];
  }

  /** Joins the roster, or renews this runner's place when due; a failure is reported and costs only spreading. */
  async refreshRoster(): Promise<void> {
    try {
      await this.roster.refresh();
    } catch (error) {
      this.events.emit('runner:error', { error: coerceError(error), context: 'runner roster' });
    }
  }

  /** Reads the roster again now (see Roster.reread); a failure is reported and costs only spreading. */
  private async rereadRoster(): Promise<void> {
    try {
      await this.roster.reread();
    } catch (error) {
      this.events.emit('runner:error', { error: coerceError(error), context: 'runner roster' });
    }
  }

  /** Gives this runner's roster place back (at the end of its run); a failure is reported (the place expires within a lease). */
  async leaveRoster(): Promise<void> {
    try {
      await this.rosterRefresh;
      await this.roster.leave();
    } catch (error) {
      this.events.emit('runner:error', { error: coerceError(error), context: 'runner roster' });
    }
  }

  /** Takes the task's shared slots (reserved as `slots`), claims it, and starts its attempt. */
  private async claimOne(t: TaskSnapshot, handler: TaskHandler<any, unknown>, recovered: boolean, slots: SlotId[]): Promise<void> {
    const name = t.record.name;
    this.claiming.set(name, t.record.options.group);
    // The slot of an attempt whose outcome is being written, if one waits: this claim is written behind that outcome.
    let after = this.attempts.takeHandover();
    let held: HeldSlots | null = null;
    try {
      const slotsSentAt = performance.now();
      if (slots.length > 0) {
        held = await this.shared.acquire(slots, name, t.state.token + 1);
        // Taken by another runner meanwhile: try other slots at once (a missed scope backs off; a window's tokens are few).
        if (!held) {
          this.sync.view.requeue(t);
          return this.hooks.wake();
        }
      }
      const claimSentAt = performance.now();
      const asked = {
        runnerId: this.opts.runnerId,
        attempt: t.state.attempt + 1,
        leaseMs: this.opts.leaseMs,
        heartbeatMs: this.opts.heartbeatMs,
        checkpoint: t.state.checkpoint,
        // A resumed attempt starts where its checkpoint left off, not at 0 %.
        progress: t.state.checkpoint === undefined || t.state.checkpoint === null ? 0 : t.state.checkpointProgress,
      };
      let taken: Transition | null = null;
      const claim = await this.store.claimTask({ container: this.container, task: name, expectedToken: t.state.token, claim: asked, onTaken: (entry) => (taken = entry), after });
      // Granted: its slot is this attempt's now (the outcome it followed is stored).
      if (claim) after = undefined;
      if (!claim) {
        // Another runner claimed it first: learn its claim (from the entry the
        // store read back to judge ours, else by reading the log), and move
        // on to other candidates at once rather than at the next poll, from
        // another place of the ready set.
        // A lone rate token stays held for this group's next claim in its window (nothing started under it).
        if (!held || !this.shared.keepSpare(held, t.record.options.group)) await this.giveBack(held);
        held = null;
        if (!taken || !this.sync.view.apply(name, [taken])) await this.sync.catchUp(name);
        const now = this.sync.view.get(name);
        if (now) this.sync.view.requeue(now);
        const holder = now?.state.status === 'running' ? now.state.runnerId : null;
        this.noteRival(holder);
        this.events.emit('task:claim-lost', { container: this.container, task: name, runnerId: this.opts.runnerId, holder });
        this.sweep.lost();
        // Many lost claims: the picture lags far behind others' work, and one
        // read of everything costs less than learning it claim by claim.
        if (++this.lostClaims >= Math.max(2 * this.opts.concurrency, this.sync.view.size / RELOAD_AFTER_LOST_SHARE)) {
          this.lostClaims = 0;
          this.sync.stale = true;
        }
        this.hooks.wake();
        return;
      }
      this.lostClaims = 0;
      this.sync.view.apply(name, [claimedEntry(claim, asked)]);
      const takeover = this.takeovers.get(name);
      if (takeover) {
        this.takeovers.delete(name);
        this.events.emit('task:affinity-takeover', { container: this.container, task: name, attempt: claim.attempt, ...takeover });
      }
      // stop() began while the claim was in flight, or the slots were taken
      // so long ago that another runner may have judged them abandoned: give it back, do not start it.
      if (this.hooks.isStopping() || (held && performance.now() - slotsSentAt >= this.opts.leaseMs - fenceMarginMs(this.opts.leaseMs, this.opts.heartbeatMs))) {
        return await this.attempts.release(claim);
      }
      if (recovered && t.state.recoveries >= this.opts.maxRecoveries) {
        return await this.attempts.failAtLimit(claim, t, new RecoveryLimitError(name, t.state.recoveries + 1));
      }
      if (t.state.lapses >= this.opts.maxRecoveries) {
        return await this.attempts.failAtLimit(claim, t, new LeaseLapseLimitError(name, t.state.lapses, this.opts.leaseMs));
      }
      // Neither the dependencies' outputs nor the input are held in the picture: read them for the task about to start.
      const [deps, input] = await Promise.all([this.sync.dependencyOutputs(t), this.sync.inputOf(name)]);
      // A rate token's window is over (or nearly): give the claim back, do not start it.
      if (!this.shared.mayStart(held)) return await this.attempts.release(claim);
      this.attempts.start(claim, { ...t, record: { ...t.record, input } }, handler, recovered, deps, claimSentAt, this.shared.keptByAttempt(held));
      held = null; // the attempt gives its slots back when it ends; its rate tokens stay spent
    } catch (error) {
      // The claim's fate is unknown: read the task's log again before deciding anything about it.
      this.catchUps.add(name);
      this.events.emit('runner:error', { error: coerceError(error), context: 'scheduling' });
    } finally {
      // Not granted: the slot taken over goes back to the attempt still writing its outcome, if it is.
      if (after) this.attempts.returnHandover(after);
      // Not started: whatever happened to the claim, its slots go back (nothing runs under them).
      await this.giveBack(held);
      this.claiming.delete(name);
    }
  }

  /** Releases shared slots; a failed release is reported (a slot whose claim is over is evicted by the next runner that needs it). */
  private async giveBack(held: HeldSlots | null): Promise<void> {
    if (!held) return;
    try {
      await this.shared.release(held);
    } catch (error) {
      this.events.emit('runner:error', { error: coerceError(error), context: 'releasing shared slots' });
    }
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

  private hasGroupCapacity(group: string | null, extra = 0): boolean {
    const limit = group ? this.groupLimits.get(group) : undefined;
    if (limit === undefined) return true;
    let inGroup = extra + this.attempts.busyIn(group!);
    for (const g of this.claiming.values()) if (g === group) inGroup += 1;
    return inGroup < limit;
  }

}

/** The earlier of two optional times. */
export function earliest(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.getTime() <= b.getTime() ? a : b;
}
