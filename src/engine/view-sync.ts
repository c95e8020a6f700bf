import pLimit from 'p-limit';
import { NotFoundError } from '../errors.js';
import type { ContainerSnapshot, SnapshotOptions, TaskSnapshot, TaskStore } from '../store/types.js';
import { OUTPUT_NOT_READ } from '../store/types.js';
import { completeRetry } from './container-commands.js';
import { refreshClaim } from './entries.js';
import { ContainerView } from './view.js';

/**
 * Point reads a burst (one per task) keeps in flight at once: starting a read
 * costs the event loop a fraction of a ms (building, serialising and sending
 * the command, then decoding its reply), so hundreds started in one turn
 * (the claims a SIGKILLed runner left, seen running elsewhere at every poll)
 * held the loop for 50–200 ms; this many keep a reply coming at every turn.
 */
const READS_IN_FLIGHT = 16;

/**
 * Keeps a runner's {@link ContainerView} in step with the database, reading
 * only what may have changed:
 * - the container document (one read by `_id`): a moved revision (a cancel,
 *   tasks added or deleted, a reset or hand edit) means reading everything again;
 * - the log of a task after the position known, when a write of this runner
 *   found the position taken (another runner got there first);
 * - the claims of tasks running elsewhere, and what followed them (heartbeats,
 *   outcomes), a couple of reads by `_id` per such task.
 */
export class ViewSync {
  view!: ContainerView;
  /** The container's revision the view reflects. */
  revision = 0;
  /** Set when the view cannot be trusted any more: the next step reads everything again. */
  stale = false;
  /** Monotonic time (ms) when the latest full read of the container began; -Infinity before the first. */
  lastFullReadAt = Number.NEGATIVE_INFINITY;
  /** The declared graph of the incarnation run, once a read gave it (null: none known, e.g. a 0.0.1 container). */
  private knownGraph: SnapshotOptions['knownGraph'] | null = null;

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    /** The container's incarnation this runner runs; another one is a different run. */
    private readonly incarnation: string,
  ) {}

  /**
   * Starts from a snapshot already read (the one `Runner.create` read),
   * without reading again; `view` is the snapshot's, when already built.
   */
  adopt(snapshot: ContainerSnapshot, view?: ContainerView): void {
    this.checkIncarnation(snapshot.container.incarnation);
    const definition = snapshot.container.definition;
    if (definition) this.knownGraph = { incarnation: this.incarnation, definition };
    this.view = view ?? new ContainerView(snapshot);
    this.revision = snapshot.revision ?? 0;
    // A retry still recorded on the container is finished by the next read.
    this.stale = Boolean(snapshot.container.retry);
  }

  /** Reads the whole container again (without outputs: those are read for the tasks about to start). */
  async reload(): Promise<void> {
    const startedAt = performance.now();
    // The declared graph is not read again: it never changes within an incarnation (see SnapshotOptions.knownGraph).
    const knownGraph = this.knownGraph ?? undefined;
    const load = () => this.store.loadSnapshot(this.container, { outputs: false, parallel: true, ...(knownGraph ? { knownGraph } : {}) });
    let snapshot = await load();
    // A retry recorded on the container and not ended (its process may have
    // died between two of its writes) is finished here, then read again.
    for (let i = 0; i < 3 && snapshot?.container.retry; i++) {
      await completeRetry(this.store, this.container, snapshot.container.retry);
      snapshot = await load();
    }
    if (!snapshot) throw new NotFoundError('container', this.container, 'it was deleted while running');
    this.checkIncarnation(snapshot.container.incarnation);
    this.adopt(snapshot, await ContainerView.build(snapshot));
    this.lastFullReadAt = startedAt;
  }

  /**
   * Reads the container document; reads everything again when its revision
   * moved. Throws {@link NotFoundError} once it was deleted (or deleted and
   * created again).
   */
  async checkHead(): Promise<void> {
    const head = await this.store.readContainerHead(this.container);
    if (!head) throw new NotFoundError('container', this.container, 'it was deleted while running');
    this.checkIncarnation(head.record.incarnation);
    if (head.revision !== this.revision || head.record.retry) await this.reload();
  }

  /**
   * Confirms that a picture in which everything is finished is the stored
   * truth; false when it was not (the picture was read again). A finished
   * task moves on only through a reset or a hand edit, and tasks appear only
   * by being added, all of which move the revision on; so one read of the
   * container document confirms it, plus a full read when an attempt that
   * staged tasks unseen so far has ended since.
   */
  async confirm(): Promise<boolean> {
    const before = this.view;
    await this.checkHead();
    if (this.view !== before) return false;
    for (const s of this.view.hiddenStaged) {
      const adder = this.view.get(s.addedBy);
      if (!adder || adder.state.token > s.stagedBy) {
        await this.reload();
        return false;
      }
    }
    return true;
  }

  /** Reads the entries of a task after the position known (a write found it taken). */
  async catchUp(task: string): Promise<void> {
    const t = this.view.get(task);
    if (!t) return;
    const entries = await this.store.readLog(this.container, task, t.state.token + 1);
    // A position found taken, yet nothing there (the task was deleted meanwhile?): read everything again.
    if (entries.length === 0 || !this.view.apply(task, entries)) this.stale = true;
    const now = this.view.get(task);
    if (now) this.view.requeue(now);
  }

  /**
   * Reads again the checkpoint an attempt of this runner left in its claim
   * entry (written in place while it ran), for the next attempt to resume from.
   */
  async refreshCheckpoint(task: string, claimToken: number): Promise<void> {
    const [claim] = await this.store.readLog(this.container, task, claimToken, 1);
    const t = this.view.get(task);
    if (!claim || claim.kind !== 'claimed' || !t || t.state.token !== claimToken + 1) return;
    this.view.setState(task, {
      ...t.state,
      checkpoint: claim.checkpoint ?? undefined,
      checkpointProgress: claim.checkpointProgress ?? t.state.checkpointProgress,
    });
  }

  /** {@link catchUp} of each task, {@link READS_IN_FLIGHT} at a time. */
  async catchUpAll(tasks: readonly string[]): Promise<void> {
    const limit = pLimit(READS_IN_FLIGHT);
    await Promise.all(tasks.map((name) => limit(() => this.catchUp(name))));
  }

  /** Re-reads the claims of the given running tasks, and what followed them ({@link READS_IN_FLIGHT} tasks at a time). */
  async watch(tasks: readonly string[]): Promise<void> {
    const limit = pLimit(READS_IN_FLIGHT);
    await Promise.all(tasks.map((name) => limit(() => this.watchOne(name))));
  }

  /** Re-reads the claim of one task running elsewhere, and what followed it. */
  private async watchOne(name: string): Promise<void> {
    const before = this.view.get(name);
    if (!before) return;
    const [claim, ...after] = await this.store.readLog(this.container, name, before.state.token);
    const current = this.view.get(name);
    if (!current || current.state.token !== before.state.token) return; // moved meanwhile by this runner
    if (!claim) {
      // Its position is gone (the task was deleted or renamed): read everything again.
      this.stale = true;
      return;
    }
    const refreshed = refreshClaim(current.state, claim);
    if (
      refreshed.heartbeats !== current.state.heartbeats ||
      refreshed.leaseUntil?.getTime() !== current.state.leaseUntil?.getTime() ||
      refreshed.progress !== current.state.progress
    ) {
      this.view.setState(name, refreshed);
    }
    if (!this.view.apply(name, after)) this.stale = true;
  }

  /**
   * The outputs of `t`'s dependencies, reading only those not in memory (a
   * reload reads none; this runner's own successes keep theirs).
   */
  async dependencyOutputs(t: TaskSnapshot): Promise<Record<string, unknown>> {
    // Keyed by task name: no prototype, so a task called `__proto__` or `constructor` is an own key like any other.
    const deps: Record<string, unknown> = Object.create(null);
    const missing: Array<{ task: string; token: number }> = [];
    for (const d of t.record.dependsOn) {
      const dep = this.view.get(d);
      if (dep?.state.output === OUTPUT_NOT_READ) missing.push({ task: d, token: dep.state.token });
      else deps[d] = dep?.state.output ?? null;
    }
    if (missing.length === 0) return deps;
    const read = await this.store.readOutputs(this.container, missing);
    for (const m of missing) {
      if (read.has(m.task)) deps[m.task] = read.get(m.task);
      else deps[m.task] = await this.lastOutput(m.task);
    }
    return deps;
  }

  /** A task's input, read from the store (the picture holds none); null for a task without one. */
  async inputOf(task: string): Promise<unknown> {
    if (!this.view.hasInput(task)) return null;
    const read = await this.store.readInputs(this.container, [task]);
    return read.get(task) ?? null;
  }

  /** The output of a task's last success, from its whole log (its success is not its newest entry). */
  private async lastOutput(task: string): Promise<unknown> {
    const log = await this.store.readLog(this.container, task, 1);
    const success = log.filter((e) => e.kind === 'succeeded').pop();
    return success?.output ?? null;
  }

  private checkIncarnation(incarnation: string | undefined): void {
    if ((incarnation ?? '') !== this.incarnation) {
      throw new NotFoundError('container', this.container, 'it was deleted and created again while running');
    }
  }
}
