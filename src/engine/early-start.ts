import { foldTransitions, initialTaskState } from '../store/fold.js';
import { TimeSlice } from '../time-slice.js';
import type { ContainerRecord, ContainerSnapshot, TaskRecord, TaskSnapshot, TaskState, TaskStore } from '../store/types.js';
import { ContainerView } from './view.js';

/**
 * Containers with fewer declared tasks are read whole before anything
 * starts: their full read costs little more than the probes that would
 * stand in for it (up to 64 tasks are read by `_id` on FerretDB, and a few
 * hundred documents are one reply).
 */
export const EARLY_START_MIN_TASKS = 128;

/** Log positions probed at once (point reads by `_id`) per round. */
const PROBES_PER_ROUND = 32;

/**
 * Dependencies a task may have and still be taken in before the full read:
 * each costs reads of its log (one per entry, plus one), so a task with more
 * waits for the full read.
 */
export const EARLY_DEPENDENCIES_MAX = 16;

/**
 * Starts a resumed runner on work before its first full read of a large
 * container has landed (it takes seconds: the server scans the whole log).
 *
 * Used only when the container holds exactly the definition's tasks, as
 * recorded (see `mayStartEarly`, ensure-container.ts): their records are
 * known without reading, none failed for good, nothing was cancelled. What
 * is not known is each task's log. The picture meanwhile holds only tasks
 * shown free and the dependencies shown succeeded, and starts from nothing:
 * - a task is taken in only when a read of its first log position by `_id`
 *   found it free: it never moved, so its state is the initial one, and its
 *   claim is an insert at that position, which loses (duplicate key) if
 *   anyone wrote there since. A task that the unread part of the log shows
 *   finished or held has an entry at that position, so it is never started;
 * - a task with dependencies (at most {@link EARLY_DEPENDENCIES_MAX}) is
 *   taken in only once each dependency's whole log, read by `_id` position
 *   after position up to the first free one (as a runner catches up on any
 *   task), folds to succeeded; the dependency enters the picture with that
 *   state. A log is append-only by position, so that is the dependency's
 *   state when read. What may follow a success in a log is a hand edit or a
 *   reset, and each moves the container's revision on, which ends the early
 *   start at the next check of the head, as it makes any runner read
 *   everything again;
 * - the picture lacks the other declared tasks, so it is never finished,
 *   and nothing is planned (skipped, cancelled) from it: no task in it has a
 *   dependency that is not succeeded.
 * Positions are probed where free ones are likely: right after the ones
 * found free (runners sweep in declaration order), the dependents of tasks
 * this runner finished, else at random among those not probed yet. Once the
 * full read lands, the runner takes it as its picture and reads again the
 * logs of the tasks it moved or read meanwhile.
 */
export class EarlyStart {
  /** The full read, once landed (null: the container is gone); undefined until then. */
  landed: ContainerSnapshot | null | undefined = undefined;
  /** Why the full read failed, once it did. */
  failure: unknown = undefined;
  /** Tasks that may be taken in (no affinity key, at most {@link EARLY_DEPENDENCIES_MAX} dependencies), in declaration order. */
  private readonly candidates: TaskRecord[];
  /** Indexes (in {@link candidates}) probed so far and not waiting. */
  private readonly probed = new Set<number>();
  /** Indexes found free whose dependencies had not all succeeded: probed again only once this runner finished one of them. */
  private readonly waiting = new Set<number>();
  /** Indexes worth probing next: those right after a free one, and the dependents of tasks finished here. */
  private readonly hot: number[] = [];
  /** Tasks taken in so far (shown free). */
  private readonly taken: TaskRecord[] = [];
  /** Taken tasks whose dependents were not yet made hot (done once they succeeded here). */
  private unfinished: TaskRecord[] = [];
  /** Dependencies whose log was read to its end and folded to succeeded, with that state. */
  private readonly succeeded = new Map<string, TaskState>();
  /** Every record by name, and each task's dependents (indexes in {@link candidates}): made on first need, none in a flat container. */
  private graph: { byName: Map<string, TaskRecord>; dependents: Map<string, number[]> } | null = null;
  /** Some candidate has dependencies (a flat container makes no index of names). */
  private readonly withDependents: boolean;
  /** Reads of log positions sent so far (a figure for tests and benches). */
  probes = 0;

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    /** The container document as read, with its declared graph (a picture without every declared task is never finished). */
    private readonly record: ContainerRecord,
    private readonly records: readonly TaskRecord[],
    /** The full read, under way. */
    full: Promise<ContainerSnapshot | null>,
    /** Monotonic time (ms) the full read began. */
    readonly readStartedAt: number,
    /** Called once the full read has landed or failed. */
    onLanded: () => void,
  ) {
    this.candidates = records.filter((r) => r.dependsOn.length <= EARLY_DEPENDENCIES_MAX && r.options.affinity === undefined);
    this.withDependents = this.candidates.some((r) => r.dependsOn.length > 0);
    full.then(
      (snapshot) => {
        this.landed = snapshot;
        onLanded();
      },
      (error: unknown) => {
        this.failure = error ?? new Error('the first read failed');
        onLanded();
      },
    );
  }

  /** The full read has landed (or failed). */
  get done(): boolean {
    return this.landed !== undefined || this.failure !== undefined;
  }

  /**
   * Probes up to {@link PROBES_PER_ROUND} first positions when fewer than
   * `wanted` tasks of `view` are pending; returns the picture with the tasks
   * shown free (and ready) added, with their dependencies (the tasks it holds
   * keep their states), or null when none was added.
   */
  async grow(view: ContainerView, wanted: number): Promise<ContainerView | null> {
    let pending = 0;
    for (const name of view.activeNames()) if (view.get(name)?.state.status === 'pending') pending += 1;
    if (pending >= wanted) return null;
    await this.heatDependents(view);
    if (this.probed.size + this.waiting.size >= this.candidates.length && this.hot.length === 0) return null;
    const targets = this.pick(Math.min(PROBES_PER_ROUND, Math.max(4, 2 * (wanted - pending))));
    this.probes += targets.length;
    const free = await Promise.all(targets.map(async (i) => (await this.store.readLog(this.container, this.candidates[i]!.name, 1, 1)).length === 0));
    const ready = await Promise.all(targets.map((i, k) => (free[k] ? this.dependenciesSucceeded(this.candidates[i]!, view) : false)));
    let added = 0;
    for (const [k, i] of targets.entries()) {
      if (!free[k]) continue;
      const record = this.candidates[i]!;
      if (!ready[k]) {
        // Free, yet a dependency has not succeeded: probed again once one finishes here.
        this.probed.delete(i);
        this.waiting.add(i);
        continue;
      }
      this.taken.push(record);
      if (this.withDependents) this.unfinished.push(record);
      added += 1;
      if (i + 1 < this.candidates.length && !this.probed.has(i + 1)) this.hot.push(i + 1);
    }
    // The full read may have landed meanwhile: the runner takes that instead.
    if (added === 0 || this.done) return null;
    // The records as declared (inputs included), with the states the picture
    // holds; thousands after a while on a large container: in slices.
    const slice = new TimeSlice();
    const tasks: TaskSnapshot[] = [];
    for (const record of this.taken) {
      tasks.push({ record: { ...record }, state: view.get(record.name)?.state ?? initialTaskState() });
      if (slice.due()) await slice.yield();
    }
    const inPicture = new Set(this.taken.map((r) => r.name));
    for (const [name, state] of this.succeeded) {
      if (inPicture.has(name)) continue;
      const record = this.graph!.byName.get(name)!;
      tasks.push({ record: { ...record }, state: view.get(name)?.state ?? state });
    }
    if (this.done) return null;
    // Every task once, each a declared one.
    return ContainerView.buildPartial({ container: this.record, tasks, readAt: new Date(), hiddenStaged: [] }, slice);
  }

  /** Names of the tasks taken in so far, and of the dependencies read succeeded (all may have moved since the full read began). */
  takenNames(): string[] {
    const names = new Set(this.taken.map((r) => r.name));
    for (const name of this.succeeded.keys()) names.add(name);
    return [...names];
  }

  /**
   * Each dependency of `record` succeeded: in `view` (this runner's own
   * success, or one read before), else by a read of its whole log by `_id`.
   */
  private async dependenciesSucceeded(record: TaskRecord, view: ContainerView): Promise<boolean> {
    if (record.dependsOn.length === 0) return true;
    const graph = await this.graphIndex();
    for (const dep of record.dependsOn) {
      const seen = view.get(dep)?.state;
      if (seen?.status === 'succeeded') {
        this.succeeded.set(dep, seen);
        continue;
      }
      if (this.succeeded.has(dep)) continue;
      if (!graph.byName.has(dep)) return false;
      const log = await this.store.readLog(this.container, dep, 1);
      this.probes += log.length + 1;
      const state = foldTransitions(log);
      if (state.status !== 'succeeded') return false;
      this.succeeded.set(dep, state);
    }
    return true;
  }

  /** Makes hot the waiting dependents of the taken tasks that succeeded here. */
  private async heatDependents(view: ContainerView): Promise<void> {
    if (this.unfinished.length === 0) return;
    const graph = await this.graphIndex();
    this.unfinished = this.unfinished.filter((r) => {
      if (view.get(r.name)?.state.status !== 'succeeded') return true;
      for (const i of graph.dependents.get(r.name) ?? []) {
        if (this.waiting.delete(i) || !this.probed.has(i)) this.hot.push(i);
      }
      return false;
    });
  }

  /** {@link graph}, made on first need, the event loop let through as it goes (100k records take tens of ms). */
  private async graphIndex(): Promise<NonNullable<EarlyStart['graph']>> {
    if (this.graph) return this.graph;
    const slice = new TimeSlice();
    const byName = new Map<string, TaskRecord>();
    for (const r of this.records) {
      byName.set(r.name, r);
      if (slice.due()) await slice.yield();
    }
    const dependents = new Map<string, number[]>();
    for (const [i, r] of this.candidates.entries()) {
      for (const d of r.dependsOn) {
        const list = dependents.get(d);
        if (list) list.push(i);
        else dependents.set(d, [i]);
      }
      if (slice.due()) await slice.yield();
    }
    this.graph ??= { byName, dependents };
    return this.graph;
  }

  /** Up to `n` indexes not probed yet: after free ones first, then at random. */
  private pick(n: number): number[] {
    const out: number[] = [];
    const take = (i: number) => {
      if (i < 0 || i >= this.candidates.length || this.probed.has(i) || this.waiting.has(i)) return;
      this.probed.add(i);
      out.push(i);
    };
    while (out.length < n && this.hot.length > 0) {
      const i = this.hot.shift()!;
      // A run of free positions: probe ahead along it.
      take(i);
      for (let j = i + 1; out.length < n && j < i + 4; j++) take(j);
    }
    for (let tries = 0; out.length < n && tries < 4 * n && this.probed.size + this.waiting.size < this.candidates.length; tries++) {
      take(Math.floor(Math.random() * this.candidates.length));
    }
    return out;
  }
}
