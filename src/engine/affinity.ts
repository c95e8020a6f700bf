import type { TaskSnapshot } from '../store/types.js';
import type { ContainerView } from './view.js';

/** What {@link AffinityJudge.judge} decided for a ready task with an affinity key. */
export type AffinityDecision =
  /** This runner may claim it: no holder yet, this runner holds the key, or `takeoverFrom` is judged gone. */
  | { claim: true; takeoverFrom: string | null; waitedMs: number }
  /** Leave it to the holder; look again at `retryAt` (wall clock) or at the next read, after reading everything when `needsFullRead`. */
  | { claim: false; holder: string; retryAt: Date | null; needsFullRead: boolean };

/**
 * Decides, for a task with an affinity key (`options.affinity`), whether this
 * runner may claim it. The rule, the same for every runner reading the same
 * logs:
 *
 * - the **holder** of a key is the runner of the latest claim of the key's
 *   latest-declared task that was ever claimed (task logs only: no clock, no
 *   extra document);
 * - a ready task of the key is claimed only by its holder, or by anyone when
 *   the key has no holder yet;
 * - another runner **takes over** when the holder's last task of the key was
 *   given back (a graceful stop releases it), or when the holder showed no
 *   running task in this container for `waitMs` of this runner's monotonic
 *   time, confirmed by a full read of the container made after that wait;
 * - a task whose holder's lease expired is recovered as any other (the
 *   lease rule), whatever its key.
 *
 * Fencing: a takeover is only ever a claim, so it is decided by the task's
 * fencing token like every claim; once it is in the log, every reader
 * (the old holder too, when it wakes up) computes the new holder. A holder
 * that was frozen and resumes can finish nothing of what was taken over (its
 * writes carry a stale token) and claims nothing more of the key. Affinity
 * is placement, not mutual exclusion: a handler that runs on a runner other
 * than the one that ran the key's earlier tasks must redo what it needs from
 * the last durable point (its checkpoint, the source).
 */
export class AffinityJudge {
  /** key → since when (monotonic ms) this runner sees its holder running nothing. */
  private readonly idleSince = new Map<string, { holder: string; at: number }>();
  /** Runners holding a running task in the picture, read once per step (see {@link beginStep}). */
  private runners: Set<string> | null = null;
  /** Tasks by affinity key, rebuilt when the view changes (a new read, tasks added). */
  private index: { view: ContainerView; byKey: Map<string, string[]> } | null = null;

  constructor(
    private readonly runnerId: string,
    /** How long the holder may show no running task before another runner takes its keys over, in ms. */
    private readonly waitMs: number,
    /** Wall clock, ms since the epoch (for `retryAt`). */
    private readonly clock: { now(): number },
  ) {}

  /**
   * @param t a ready (pending) task of `view` with `options.affinity` set
   * @param lastFullReadAt monotonic time (ms) when this runner's latest full read of the container began
   * @param now this runner's monotonic time, ms (`performance.now()`)
   */
  judge(view: ContainerView, t: TaskSnapshot, lastFullReadAt: number, now: number): AffinityDecision {
    const key = t.record.options.affinity!;
    const last = this.holderTask(view, key);
    const holder = last?.state.runnerId ?? null;
    if (holder === null || holder === this.runnerId) return this.claimed(key, null, now);
    // Given back by its holder (a graceful stop releases what it runs): anyone continues at once.
    if (last!.state.status === 'pending' && last!.state.notBefore === null) return this.claimed(key, holder, now);
    if (this.isRunningSomething(view, holder)) {
      this.idleSince.delete(key);
      return { claim: false, holder, retryAt: null, needsFullRead: false };
    }
    let seen = this.idleSince.get(key);
    if (!seen || seen.holder !== holder) {
      seen = { holder, at: now };
      this.idleSince.set(key, seen);
    }
    const waitEnd = seen.at + this.waitMs;
    if (now < waitEnd) return { claim: false, holder, retryAt: new Date(this.clock.now() + (waitEnd - now)), needsFullRead: false };
    // Gone only if a full read begun after the wait still shows it idle: a picture
    // kept up to date by watching known tasks may miss the holder's newer claims.
    if (lastFullReadAt >= waitEnd) return this.claimed(key, holder, now);
    return { claim: false, holder, retryAt: new Date(this.clock.now()), needsFullRead: true };
  }

  private claimed(key: string, takeoverFrom: string | null, now: number): AffinityDecision {
    const seen = this.idleSince.get(key);
    // Kept after a takeover decision: a claim held back by a limit is decided the same way at the next step.
    if (takeoverFrom === null) this.idleSince.delete(key);
    return { claim: true, takeoverFrom, waitedMs: seen ? Math.round(now - seen.at) : 0 };
  }

  /** The key's latest-declared task that was ever claimed, or null. */
  private holderTask(view: ContainerView, key: string): TaskSnapshot | null {
    let best: TaskSnapshot | null = null;
    for (const name of this.tasksOf(view, key)) {
      const current = view.get(name);
      if (!current) continue;
      if (current.state.attempt > 0 && current.state.runnerId !== null && (!best || current.record.order > best.record.order)) best = current;
    }
    return best;
  }

  /** Forgets what was read from the picture for the last step (call once per claiming step). */
  beginStep(): void {
    this.runners = null;
  }

  private isRunningSomething(view: ContainerView, runnerId: string): boolean {
    // One pass over the active tasks per step, however many keys are judged in it.
    if (!this.runners) {
      this.runners = new Set();
      for (const name of view.runningNames()) {
        const s = view.get(name)?.state;
        if (s?.status === 'running' && s.runnerId !== null) this.runners.add(s.runnerId);
      }
    }
    return this.runners.has(runnerId);
  }

  private tasksOf(view: ContainerView, key: string): string[] {
    // A picture's task set never changes (tasks added are seen in a new picture).
    if (!this.index || this.index.view !== view) this.index = { view, byKey: view.byAffinityKey() };
    return this.index.byKey.get(key) ?? [];
  }
}
