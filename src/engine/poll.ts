import { coerceError, NotFoundError } from '../errors.js';
import type { Dispatcher } from './dispatch.js';
import type { EarlyStart } from './early-start.js';
import type { RunnerEvents } from './events.js';
import { IdleBackoff } from './idle-backoff.js';
import type { LeaseJudgement } from './lease-judgement.js';
import type { ResolvedRunnerOptions } from './runner-options.js';
import { ContainerView } from './view.js';
import type { ViewSync } from './view-sync.js';

/**
 * A runner's reads between its steps: everything when its picture is stale,
 * else every `pollMs` the container document and the logs of the tasks
 * running elsewhere, whose leases it then judges on the runner's own
 * monotonic clock. It also lands the early start (see {@link EarlyStart}).
 */
export class Poll {
  /** Monotonic time (ms) of the last read of the container (or of tasks running elsewhere). */
  lastTickAt = 0;
  /** Nothing ran or was claimed here at the end of the last step: others' moves are only seen by reading everything. */
  stalled = false;
  /** Work started while the first full read is under way; null once it landed (or without one). */
  early: EarlyStart | null = null;
  /** When an idle runner reads everything again. */
  private readonly idle: IdleBackoff;
  /** The poll's read of the tasks running elsewhere, while in flight (see {@link watchElsewhere}). */
  private watching: Promise<void> | null = null;

  constructor(
    private readonly container: string,
    private readonly opts: ResolvedRunnerOptions,
    private readonly events: RunnerEvents,
    private readonly sync: ViewSync,
    private readonly leases: LeaseJudgement,
    private readonly dispatch: Dispatcher,
    /** Tasks whose log must be read again before anything is decided about them. */
    private readonly catchUps: Set<string>,
    private readonly wake: () => void,
  ) {
    this.idle = new IdleBackoff(opts.pollMs);
  }

  /** The first step plans from what `Runner.create` read: leases seen in it are judged from now on. */
  begin(): void {
    this.judgeLeases(performance.now(), performance.now());
    this.lastTickAt = performance.now();
  }

  /** Settles once the read of the tasks running elsewhere in flight (if any) is in. */
  async watched(): Promise<void> {
    await this.watching;
  }

  /** Milliseconds until the next poll is due (0 or less: due now). */
  untilDueMs(): number {
    return this.opts.pollMs - (performance.now() - this.lastTickAt);
  }

  /** Reads what may have changed: everything when the picture is stale, else every `pollMs` the container and the tasks running elsewhere. */
  async refresh(): Promise<void> {
    for (const name of this.catchUps) {
      this.catchUps.delete(name);
      await this.sync.catchUp(name);
    }
    if (this.early) await this.startEarly(this.early);
    if (this.early) {
      // Still early: only the container document is watched (a moved revision reads everything now).
      if (performance.now() - this.lastTickAt < this.opts.pollMs) return;
      const before = this.sync.view;
      await this.sync.checkHead();
      if (this.sync.view !== before) this.early = null;
      this.lastTickAt = performance.now();
      return;
    }
    const now = performance.now();
    const due = now - this.lastTickAt >= this.opts.pollMs;
    if (!this.sync.stale && !due) return;
    const readStartedAt = now;
    // A full read or a new poll waits for the last poll's read of the tasks running elsewhere.
    await this.watching;
    if (this.sync.stale) await this.sync.reload();
    else if (this.stalled && now >= this.idle.reloadAt) {
      // Nothing to do here while others work: their moves are only seen by
      // reading everything, which an idle runner does less and less often
      // while the revision stands still (see IdleBackoff).
      await this.sync.reload();
      this.idle.reloaded(performance.now());
    } else {
      const revision = this.sync.revision;
      await this.sync.checkHead();
      if (this.sync.revision !== revision) this.idle.reset();
      if (!this.stalled) {
        this.idle.reset();
        this.lastTickAt = performance.now();
        this.watching = this.watchElsewhere(readStartedAt);
        return;
      }
    }
    if (!this.stalled) this.idle.reset();
    this.lastTickAt = performance.now();
    this.judgeLeases(readStartedAt, this.lastTickAt);
  }

  /**
   * Reads again the logs of the tasks running elsewhere (a few reads by
   * `_id` each), then judges their leases, beside the step's claims rather
   * than before them: with many tasks running on other runners, those reads
   * took longer than a short task, and every slot freed meanwhile waited for
   * them. Leases are judged only once the reads are in, from when they began.
   */
  private async watchElsewhere(readStartedAt: number): Promise<void> {
    const view = this.sync.view;
    try {
      await this.sync.watch(this.runningElsewhere());
      // A full read replaced the picture meanwhile: it is newer, and is judged on its own.
      if (this.sync.view === view) this.judgeLeases(readStartedAt, performance.now());
      this.wake();
    } catch (error) {
      // As an error of a step: holders get a whole lease again, and everything is read again.
      this.leases.forget();
      this.sync.stale = true;
      this.events.emit('runner:error', { error: coerceError(error), context: 'scheduling' });
    } finally {
      this.watching = null;
    }
  }

  /**
   * Before the first full read has landed: takes in more tasks shown free
   * (see {@link EarlyStart}). Once it has: takes it as the picture, reads
   * again the logs of the tasks moved meanwhile (the read may predate their
   * entries), and judges the leases it shows.
   */
  private async startEarly(early: EarlyStart): Promise<void> {
    if (this.sync.stale) {
      // Read everything again anyway (the revision moved): that read replaces this one.
      this.early = null;
      return;
    }
    if (!early.done) {
      const busy = this.dispatch.local.size + this.dispatch.claiming.size;
      const grown = await early.grow(this.sync.view, this.opts.concurrency - busy);
      if (grown && !early.done) this.sync.view = grown;
      if (!early.done) return;
    }
    this.early = null;
    if (early.failure !== undefined) throw early.failure;
    if (!early.landed) throw new NotFoundError('container', this.container, 'it was deleted while running');
    const before = this.sync.view;
    this.sync.adopt(early.landed, await ContainerView.build(early.landed));
    this.sync.lastFullReadAt = early.readStartedAt;
    const token = (view: ContainerView, name: string) => view.get(name)?.state.token ?? 0;
    const moved = early.takenNames().filter((name) => token(before, name) > token(this.sync.view, name));
    await this.sync.catchUpAll(moved);
    this.judgeLeases(early.readStartedAt, performance.now());
  }

  /**
   * Judges the leases of tasks running elsewhere on this runner's own clock,
   * from a read made between the given monotonic times.
   */
  private judgeLeases(readStartedAt: number, readEndedAt: number): void {
    const view = this.sync.view;
    const running = this.runningElsewhere().map((n) => view.get(n)!);
    for (const t of running) this.dispatch.noteRival(t.state.runnerId);
    this.leases.judge(view, running, readStartedAt, readEndedAt, new Date(this.opts.clock.now()));
  }

  /** Tasks running in the picture that this runner does not run. */
  runningElsewhere(): string[] {
    const names: string[] = [];
    for (const name of this.sync.view.runningNames()) {
      if (!this.dispatch.local.has(name) && !this.dispatch.claiming.has(name)) names.push(name);
    }
    return names;
  }
}
