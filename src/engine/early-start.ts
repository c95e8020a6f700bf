import { initialTaskState } from '../store/fold.js';
import type { ContainerRecord, ContainerSnapshot, TaskRecord, TaskSnapshot, TaskStore } from '../store/types.js';
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
 * Starts a resumed runner on work before its first full read of a large
 * container has landed (it takes seconds: the server scans the whole log).
 *
 * Used only when the container holds exactly the definition's tasks, as
 * recorded (see `mayStartEarly`, ensure-container.ts): their records are
 * known without reading, none failed for good, nothing was cancelled. What
 * is not known is each task's log. The picture meanwhile holds only tasks
 * shown free, and starts from nothing:
 * - a task is taken in only when a read of its first log position by `_id`
 *   found it free: it never moved, so its state is the initial one, and its
 *   claim is an insert at that position, which loses (duplicate key) if
 *   anyone wrote there since. A task that the unread part of the log shows
 *   finished or held has an entry at that position, so it is never started;
 * - only tasks without dependencies are taken in: a dependency's success
 *   read in part of a log may have been undone later in it;
 * - the picture lacks the other declared tasks, so it is never finished,
 *   and nothing is planned (skipped, cancelled) from it.
 * Positions are probed where free ones are likely: right after the ones
 * found free (runners sweep in declaration order), else at random among
 * those not probed yet. Once the full read lands, the runner takes it as
 * its picture and reads again the logs of the tasks it moved meanwhile.
 */
export class EarlyStart {
  /** The full read, once landed (null: the container is gone); undefined until then. */
  landed: ContainerSnapshot | null | undefined = undefined;
  /** Why the full read failed, once it did. */
  failure: unknown = undefined;
  /** Tasks without dependencies (or affinity key), in declaration order. */
  private readonly roots: TaskRecord[];
  /** Indexes (in {@link roots}) probed so far. */
  private readonly probed = new Set<number>();
  /** Indexes worth probing next: those right after a free one. */
  private readonly hot: number[] = [];
  /** Tasks taken in so far (shown free). */
  private readonly taken: TaskRecord[] = [];
  /** Probes sent so far (a figure for tests and benches). */
  probes = 0;

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    /** The container document as read, with its declared graph (a picture without every declared task is never finished). */
    private readonly record: ContainerRecord,
    records: readonly TaskRecord[],
    /** The full read, under way. */
    full: Promise<ContainerSnapshot | null>,
    /** Monotonic time (ms) the full read began. */
    readonly readStartedAt: number,
    /** Called once the full read has landed or failed. */
    onLanded: () => void,
  ) {
    this.roots = records.filter((r) => r.dependsOn.length === 0 && r.options.affinity === undefined);
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
   * shown free added (the tasks it holds keep their states), or null when
   * none was added.
   */
  async grow(view: ContainerView, wanted: number): Promise<ContainerView | null> {
    let pending = 0;
    for (const name of view.activeNames()) if (view.get(name)?.state.status === 'pending') pending += 1;
    if (pending >= wanted || this.probed.size >= this.roots.length) return null;
    const targets = this.pick(Math.min(PROBES_PER_ROUND, Math.max(4, 2 * (wanted - pending))));
    this.probes += targets.length;
    const free = await Promise.all(targets.map(async (i) => (await this.store.readLog(this.container, this.roots[i]!.name, 1, 1)).length === 0));
    let added = 0;
    for (const [k, i] of targets.entries()) {
      if (!free[k]) continue;
      this.taken.push(this.roots[i]!);
      added += 1;
      if (i + 1 < this.roots.length && !this.probed.has(i + 1)) this.hot.push(i + 1);
    }
    // The full read may have landed meanwhile: the runner takes that instead.
    if (added === 0 || this.done) return null;
    // The records as declared (inputs included), with the states the picture holds.
    const tasks: TaskSnapshot[] = this.taken.map((record) => ({ record: { ...record }, state: view.get(record.name)?.state ?? initialTaskState() }));
    return new ContainerView({ container: this.record, tasks, readAt: new Date(), hiddenStaged: [] });
  }

  /** Names of the tasks taken in so far. */
  takenNames(): string[] {
    return this.taken.map((r) => r.name);
  }

  /** Up to `n` indexes not probed yet: after free ones first, then at random. */
  private pick(n: number): number[] {
    const out: number[] = [];
    const take = (i: number) => {
      if (i < 0 || i >= this.roots.length || this.probed.has(i)) return;
      this.probed.add(i);
      out.push(i);
    };
    while (out.length < n && this.hot.length > 0) {
      const i = this.hot.shift()!;
      // A run of free positions: probe ahead along it.
      take(i);
      for (let j = i + 1; out.length < n && j < i + 4; j++) take(j);
    }
    for (let tries = 0; out.length < n && tries < 4 * n && this.probed.size < this.roots.length; tries++) {
      take(Math.floor(Math.random() * this.roots.length));
    }
    return out;
  }
}
