import { foldTransitions } from '../store/fold.js';
import type { Transition } from '../store/transition.js';
import type { ContainerRecord, ContainerSnapshot, ContainerStatus, TaskSnapshot, TaskState } from '../store/types.js';
import { TimeSlice } from '../time-slice.js';
import { CandidateHeap } from './candidate-heap.js';
import { FAILED, isTerminal, PENDING, RUNNING, SKIPPED, StateColumns, SUCCEEDED } from './state-columns.js';
import { TaskTable, type TableRecord } from './task-table.js';

/** Marks per task. */
const IN_HEAP = 1;
const DIRTY = 2;
const CHANGED = 4;

/** Tasks added to a picture after those of its snapshot: just inserted by its builder, so pending and untouched. */
export interface FreshTasks {
  /** Read by index (an array, or records made when asked: a large create holds no list of them). */
  tasks: { readonly length: number; at(index: number): Omit<TableRecord, 'order' | 'createdAt'> | undefined };
  createdAt: Date;
}

/**
 * A runner's picture of one container, kept in memory between steps and moved
 * forward by what the runner writes and reads, so a step costs what changed,
 * not the size of the container.
 *
 * It is only ever a picture: positions are exclusive, so a runner that acts
 * on a stale picture loses the write (duplicate key) and reads what is there;
 * and the container is finished only after every task's next position was
 * checked to be free (see `Runner`).
 *
 * Held for the whole run, so kept column-wise (see {@link TaskTable} and {@link StateColumns}): a
 * task is an index; its status and position are typed-array entries; a task
 * that never moved holds no state object, nor does a succeeded one (its
 * token, attempt and end are columns); only the others (running, failed,
 * retrying, skipped, cancelled) hold their folded state. Inputs are not held
 * (read when an attempt starts), nor are the outputs of succeeded tasks once
 * every task that depends on them succeeded (read when needed). Objects
 * handed out ({@link get}, {@link nextCandidate}) are made anew on each call.
 *
 * Indexes kept up to date by {@link apply}:
 * - `unmet`: pending task → how many of its dependencies have not succeeded;
 * - the candidates: pending tasks with no unmet dependency, by priority (higher first), then declaration order;
 * - the running tasks; the dirty tasks (state changed since the planner last looked).
 */
export class ContainerView {
  /** The container (its `definition` left out: held as {@link complete}). */
  container: ContainerRecord;
  /** Tasks staged by attempts whose success was not in the log when read (see `ContainerSnapshot.hiddenStaged`). */
  readonly hiddenStaged: ReadonlyArray<{ addedBy: string; stagedBy: number }>;
  private table: TaskTable;
  /** Task states, column-wise. */
  private readonly cols = new StateColumns();
  /** Per task: its dependents that have not succeeded. */
  private openDependents = new Int32Array(0);
  /** Per pending task: its dependencies that have not succeeded (missing ones included). */
  private unmet = new Int32Array(0);
  private marks = new Uint8Array(0);
  /** Candidates: pending tasks whose dependencies all succeeded, marked IN_HEAP while held (see {@link startAt}). */
  private readonly heap = new CandidateHeap(() => this.table);
  private dirtyList = new Int32Array(0);
  private dirtyCount = 0;
  private readonly running = new Set<number>();
  private terminalCount = 0;
  private succeededCount = 0;
  private failedCount = 0;
  /** The container declares its tasks (created from a definition). */
  private readonly declared: boolean;
  /** Declared names not present yet (a container whose creator died before inserting them). */
  private missingDeclared = 0;
  /** The picture is being built. */
  private filling = false;

  constructor(snapshot: ContainerSnapshot, fresh?: FreshTasks) {
    this.container = { ...snapshot.container, definition: null };
    this.declared = snapshot.container.definition !== null && snapshot.container.definition !== undefined;
    this.hiddenStaged = snapshot.hiddenStaged ?? [];
    this.table = new TaskTable(snapshot.container.name, 0);
    for (const pause of this.fill(snapshot, fresh, () => false)) void pause;
  }

  /**
   * The view of a snapshot (and of `fresh` tasks after it), built in slices
   * of a few ms (see {@link TimeSlice}) with the event loop let through
   * between them: a large container's view is built without blocking
   * heartbeats and timers for long (`slice`: a shorter one in tests). Takes the snapshot's tasks over: the caller should let it go.
   */
  static async build(snapshot: ContainerSnapshot, fresh?: FreshTasks, slice: TimeSlice = new TimeSlice()): Promise<ContainerView> {
    const view = new ContainerView({ ...snapshot, tasks: [] });
    for (const pause of view.fill(snapshot, fresh, () => slice.due())) if (pause) await slice.yield();
    return view;
  }

  /**
   * {@link build} of a picture of some of a container's declared tasks, each
   * once (distinct names, none dynamic): the declared tasks missing from it
   * are counted, not looked up one by one (an early start's picture, built
   * again as it grows, on a 100k-task container).
   */
  static async buildPartial(snapshot: ContainerSnapshot, slice: TimeSlice = new TimeSlice()): Promise<ContainerView> {
    const view = new ContainerView({ ...snapshot, tasks: [] });
    for (const pause of view.fill(snapshot, undefined, () => slice.due(), true)) if (pause) await slice.yield();
    return view;
  }

  /** Takes in the tasks and indexes them; yields true where `due` said the caller should let the event loop through. */
  private *fill(snapshot: ContainerSnapshot, fresh: FreshTasks | undefined, due: () => boolean, allDeclared = false): Generator<boolean> {
    const tasks = snapshot.tasks;
    const n = tasks.length + (fresh?.tasks.length ?? 0);
    const table = (this.table = new TaskTable(snapshot.container.name, n));
    this.cols.reset(n);
    this.openDependents = new Int32Array(n);
    this.unmet = new Int32Array(n);
    this.marks = new Uint8Array(n);
    this.heap.reset(n);
    this.dirtyList = new Int32Array(n);
    this.dirtyCount = this.terminalCount = this.succeededCount = this.failedCount = this.missingDeclared = 0;
    this.running.clear();
    this.filling = true;
    for (let k = 0; k < tasks.length; k++) {
      const i = table.add(tasks[k]!.record);
      if (i === table.size - 1) this.keep(i, tasks[k]!.state);
      if (due()) yield true;
    }
    for (let k = 0; k < (fresh?.tasks.length ?? 0); k++) {
      table.add(fresh!.tasks.at(k)!, k, fresh!.createdAt);
      if (due()) yield true;
    }
    for (const _ of table.linking()) if (due()) yield true;
    const size = table.size;
    for (let i = 0; i < size; i++) {
      const code = this.cols.status[i]!;
      table.forEachDependency(i, (d) => {
        if (code !== SUCCEEDED) this.openDependents[d]! += 1;
        if (this.cols.status[d] !== SUCCEEDED) this.unmet[i]! += 1;
      });
      // Dependencies missing from the picture never succeed.
      this.unmet[i]! += this.missingDependencies(i);
      this.count(code, 1);
      if (code === RUNNING) this.running.add(i);
      // Everything is new to the planner.
      if (code !== SUCCEEDED) this.markDirty(i);
      if (code === PENDING && this.unmet[i] === 0) {
        this.marks[i]! |= IN_HEAP;
        this.heap.addUnordered(i);
      }
      if (due()) yield true;
    }
    this.filling = false;
    for (const i of this.cols.heldOutputs()) if (this.openDependents[i] === 0) this.cols.dropOutput(i);
    for (const _ of this.heap.heapify()) if (due()) yield true;
    if (this.declared && allDeclared) this.missingDeclared = snapshot.container.definition!.length - table.size;
    else if (this.declared) {
      // 100k lookups take tens of ms on a loaded machine: in slices too.
      for (const d of snapshot.container.definition!) {
        if (!table.has(d.name)) this.missingDeclared += 1;
        if (due()) yield true;
      }
    }
    yield false;
  }

  /** Every declared task is present (always true without a declared graph, once there is a task). */
  get complete(): boolean {
    return this.declared ? this.missingDeclared === 0 : this.table.size > 0;
  }

  /** Some task has failed (for good: no retry left). */
  get hasFailed(): boolean {
    return this.failedCount > 0;
  }

  /** Every task is terminal. */
  get allTerminal(): boolean {
    return this.terminalCount === this.table.size;
  }

  /** Tasks in the picture. */
  get size(): number {
    return this.table.size;
  }

  has(name: string): boolean {
    return this.table.has(name);
  }

  /** The task, made anew from the columns; its `record.input` is null (see {@link hasInput}). */
  get(name: string): TaskSnapshot | undefined {
    const i = this.table.index(name);
    return i === undefined ? undefined : this.at(i);
  }

  /** The task has an input, not held here: read it from the store to start it. */
  hasInput(name: string): boolean {
    const i = this.table.index(name);
    return i !== undefined && this.table.hasInput(i);
  }

  /** The tasks that depend on `name`. */
  dependentsOf(name: string): readonly string[] {
    const i = this.table.index(name);
    return i === undefined ? [] : this.table.dependentNames(i);
  }

  /** Names of the running tasks. */
  runningNames(): string[] {
    return [...this.running].map((i) => this.table.names[i]!);
  }

  /** Names of the tasks that are not succeeded. */
  activeNames(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.table.size; i++) if (this.cols.status[i] !== SUCCEEDED) out.push(this.table.names[i]!);
    return out;
  }

  /** Names of the tasks whose state changed since the planner last looked. */
  dirtyNames(): string[] {
    return Array.from(this.dirtyList.subarray(0, this.dirtyCount), (i) => this.table.names[i]!);
  }

  /** Names of the tasks with an affinity key, by key (empty at once when no task has one). */
  byAffinityKey(): Map<string, string[]> {
    const byKey = new Map<string, string[]>();
    if (!this.table.anyOption((o) => o.affinity !== undefined)) return byKey;
    for (let i = 0; i < this.table.size; i++) {
      const key = this.table.options(i).affinity;
      if (key === undefined) continue;
      const list = byKey.get(key);
      if (list) list.push(this.table.names[i]!);
      else byKey.set(key, [this.table.names[i]!]);
    }
    return byKey;
  }

  /**
   * The tasks the planner must look at, and forgets they changed: those
   * whose state changed and their dependents, limited to those a plan can
   * settle (a skipped task, whose skip may be undone; a pending task with
   * dependencies, which may have to be skipped). Made in chunks of `chunk`.
   */
  *takeChanged(chunk: number): Generator<TaskSnapshot[]> {
    const picked: number[] = [];
    const consider = (i: number) => {
      if (this.marks[i]! & CHANGED) return;
      const code = this.cols.status[i]!;
      if (code === SKIPPED || (code === PENDING && this.table.dependencyCount(i) > 0)) {
        this.marks[i]! |= CHANGED;
        picked.push(i);
      }
    };
    for (let k = 0; k < this.dirtyCount; k++) {
      const i = this.dirtyList[k]!;
      this.marks[i]! &= ~DIRTY;
      consider(i);
      this.table.forEachDependent(i, consider);
    }
    this.dirtyCount = 0;
    for (const i of picked) this.marks[i]! &= ~CHANGED;
    for (let from = 0; from < picked.length; from += chunk) {
      yield picked.slice(from, from + chunk).map((i) => this.at(i));
    }
  }

  /** Forgets which tasks changed (a plan over every active task looked at them all). */
  clearDirty(): void {
    for (let k = 0; k < this.dirtyCount; k++) this.marks[this.dirtyList[k]!]! &= ~DIRTY;
    this.dirtyCount = 0;
  }

  /**
   * Folds log entries of one task onto its state. Entries at or below the
   * state's position are ignored (already folded); returns false when the
   * first new entry does not follow the state's position (a gap: the caller
   * must read the log from there).
   */
  apply(name: string, entries: readonly Transition[]): boolean {
    const i = this.table.index(name);
    if (i === undefined) return true;
    const at = this.cols.token[i]!;
    const fresh = entries.filter((e) => e.token > at).sort((a, b) => a.token - b.token);
    if (fresh.length === 0) return true;
    if (fresh[0]!.token !== at + 1) return false;
    this.setState(name, foldTransitions(fresh, this.cols.get(i)));
    return true;
  }

  /** Replaces a task's state (e.g. after an in-place update of a running claim). */
  setState(name: string, state: TaskState): void {
    const i = this.table.index(name);
    if (i === undefined) return;
    const was = this.cols.status[i]!;
    this.count(was, -1);
    this.keep(i, state);
    this.reindex(i, was);
    this.markDirty(i);
  }

  /** Pops the next pending task whose dependencies all succeeded (priority, then declaration order), or null. */
  nextCandidate(): TaskSnapshot | null {
    while (this.heap.size > 0) {
      const i = this.heap.pop();
      this.marks[i]! &= ~IN_HEAP;
      if (this.cols.status[i] === PENDING && this.unmet[i] === 0) return this.at(i);
    }
    return null;
  }

  /**
   * Makes {@link nextCandidate} sweep from `order` up, then wrap around from
   * 0 (declaration order is `startAt(0)`, the default): runners that share a
   * container sweep from different places instead of racing for the same tasks.
   */
  startAt(order: number): void {
    this.heap.startAt(order);
  }

  /**
   * The middle half of the longest run of candidates (see {@link longestRun}),
   * as `[from, to)` orders; null when there is no candidate. Where a runner
   * that shares the container may start its sweep furthest from the others'
   * (see {@link startAt}).
   */
  widestGap(): { from: number; to: number } | null {
    const run = this.longestRun();
    if (!run) return null;
    const quarter = Math.floor((run.to - run.from) / 4);
    return { from: run.from + quarter, to: run.to - quarter };
  }

  /**
   * The longest run of candidates with consecutive orders (nothing known
   * taken or blocked between them), as `[from, to)` orders; null when there
   * is no candidate.
   */
  longestRun(): { from: number; to: number } | null {
    const orders: number[] = [];
    for (let k = 0; k < this.heap.size; k++) {
      const i = this.heap.at(k);
      if (this.cols.status[i] === PENDING && this.unmet[i] === 0) orders.push(this.table.order[i]!);
    }
    if (orders.length === 0) return null;
    orders.sort((a, b) => a - b);
    let best = { start: orders[0]!, length: 1 };
    let start = 0;
    for (let i = 1; i <= orders.length; i++) {
      if (i < orders.length && orders[i]! - orders[i - 1]! <= 1) continue;
      const length = orders[i - 1]! - orders[start]! + 1;
      if (length > best.length) best = { start: orders[start]!, length };
      start = i;
    }
    return { from: best.start, to: best.start + best.length };
  }

  /** Puts a task popped by {@link nextCandidate} back (it could not start now). */
  requeue(t: TaskSnapshot): void {
    const i = this.table.index(t.record.name);
    if (i !== undefined) this.enqueue(i);
  }

  /** A snapshot of the tasks that are not succeeded (for the full planner), read at `readAt`. */
  activeSnapshot(readAt: Date): ContainerSnapshot {
    const tasks: TaskSnapshot[] = [];
    for (let i = 0; i < this.table.size; i++) if (this.cols.status[i] !== SUCCEEDED) tasks.push(this.at(i));
    tasks.sort((a, b) => a.record.order - b.record.order || a.record.name.localeCompare(b.record.name));
    return { container: this.container, tasks, readAt };
  }

  /** The container's final status once every task is terminal (see `deriveContainerState`). */
  outcome(): Exclude<ContainerStatus, 'running'> {
    const allSucceeded = this.complete && this.succeededCount === this.table.size;
    if (this.container.cancelRequestedAt) return allSucceeded ? 'succeeded' : 'cancelled';
    if (!this.complete || !this.allTerminal) return 'failed';
    return allSucceeded ? 'succeeded' : 'failed';
  }

  /** Task i as a snapshot, made anew. */
  private at(i: number): TaskSnapshot {
    return { record: this.table.record(i), state: this.cols.get(i) };
  }

  /** Keeps task i's state; a success's output while a dependent may start and need it (read from the store otherwise). */
  private keep(i: number, state: TaskState): void {
    // (While the picture is built, dependents are not counted yet: kept, then dropped once they are.)
    this.cols.set(i, state, { affinity: this.table.options(i).affinity !== undefined, output: this.openDependents[i]! > 0 || this.filling });
  }

  /** Keeps the indexes right after task i's status went from `was` to its current one. */
  private reindex(i: number, was: number): void {
    const now = this.cols.status[i]!;
    this.count(now, 1);
    if (now === RUNNING) this.running.add(i);
    else this.running.delete(i);
    if ((was === SUCCEEDED) !== (now === SUCCEEDED)) {
      const delta = now === SUCCEEDED ? -1 : 1;
      this.table.forEachDependent(i, (j) => {
        this.unmet[j]! += delta;
        if (this.unmet[j] === 0 && this.cols.status[j] === PENDING) this.enqueue(j);
      });
      this.table.forEachDependency(i, (d) => {
        this.openDependents[d]! += delta;
        if (this.openDependents[d] === 0) this.cols.dropOutput(d);
      });
    }
    if (now === PENDING && this.unmet[i] === 0) this.enqueue(i);
  }

  private count(code: number, delta: number): void {
    if (isTerminal(code)) this.terminalCount += delta;
    if (code === SUCCEEDED) this.succeededCount += delta;
    if (code === FAILED) this.failedCount += delta;
  }

  private missingDependencies(i: number): number {
    let real = 0;
    this.table.forEachDependency(i, () => void real++);
    return this.table.dependencyCount(i) - real;
  }

  private markDirty(i: number): void {
    if (this.marks[i]! & DIRTY) return;
    this.marks[i]! |= DIRTY;
    this.dirtyList[this.dirtyCount++] = i;
  }

  private enqueue(i: number): void {
    if (this.marks[i]! & IN_HEAP) return;
    this.marks[i]! |= IN_HEAP;
    this.heap.push(i);
  }
}
