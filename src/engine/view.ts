import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { priorityOf } from '../definition/options.js';
import { foldTransitions, initialTaskState } from '../store/fold.js';
import type { Transition } from '../store/transition.js';
import type { ContainerRecord, ContainerSnapshot, TaskRecord, TaskSnapshot, TaskState } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';

/** The state every task that never moved shares (frozen: states are replaced, never changed). */
const UNTOUCHED: TaskState = Object.freeze(initialTaskState());
const NO_DEPENDENCIES: string[] = Object.freeze([]) as unknown as string[];

/** Tasks taken in between two yields to the event loop while a view is built (a few ms of work). */
const BUILD_CHUNK = 5000;

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
 * Indexes kept up to date by {@link apply}:
 * - `dependents`: task → the tasks that depend on it;
 * - `unmet`: pending task → how many of its dependencies have not succeeded;
 * - `candidates`: pending tasks with no unmet dependency, by priority (higher first), then declaration order;
 * - `active`: tasks that are not succeeded (the planner's working set);
 * - `dirty`: tasks whose state changed since the planner last looked.
 */
export class ContainerView {
  container: ContainerRecord;
  readonly tasks = new Map<string, TaskSnapshot>();
  private readonly dependents = new Map<string, string[]>();
  private readonly unmet = new Map<string, number>();
  /** Pending tasks whose dependencies all succeeded, as a binary heap on (priority descending, `record.order` from {@link origin}; see {@link startAt}). */
  private readonly heap: TaskSnapshot[] = [];
  /** Where the candidates' order starts: tasks of this order and above first, then the rest from 0 (a sweep that wraps around). */
  private origin = 0;
  private readonly inHeap = new Set<string>();
  /** Names of the tasks that are not succeeded. */
  readonly active = new Set<string>();
  readonly dirty = new Set<string>();
  private terminalCount = 0;
  private readonly failed = new Set<string>();
  /** Tasks staged by attempts whose success was not in the log when read (see `ContainerSnapshot.hiddenStaged`). */
  readonly hiddenStaged: ReadonlyArray<{ addedBy: string; stagedBy: number }>;
  /** Declared names not present yet (a container whose creator died before inserting them). */
  private missingDeclared: Set<string>;

  constructor(snapshot: ContainerSnapshot) {
    this.container = snapshot.container;
    this.hiddenStaged = snapshot.hiddenStaged ?? [];
    this.missingDeclared = new Set();
    for (const pause of this.fill(snapshot.tasks)) void pause;
  }

  /**
   * The view of a snapshot, built in chunks of {@link BUILD_CHUNK} tasks with
   * the event loop let through between them: a large container's view is
   * built without blocking heartbeats and timers for long.
   */
  static async build(snapshot: ContainerSnapshot): Promise<ContainerView> {
    const view = new ContainerView({ ...snapshot, tasks: [] });
    for (const pause of view.fill(snapshot.tasks)) if (pause) await yieldToLoop();
    return view;
  }

  /** Takes in the snapshot's tasks and indexes them; yields true where a caller may let the event loop through. */
  private *fill(tasks: readonly TaskSnapshot[]): Generator<boolean> {
    // Held for the whole run, so kept small: identical options and the empty
    // dependency list are shared, and every task that never moved shares one state.
    const options = new Map<string, TaskRecord['options']>();
    const shared = (o: TaskRecord['options']) => {
      const key = JSON.stringify(o);
      const found = options.get(key);
      if (found) return found;
      options.set(key, o);
      return o;
    };
    const chunked = function* (each: (t: TaskSnapshot) => void): Generator<boolean> {
      for (let i = 0; i < tasks.length; i++) {
        each(tasks[i]!);
        if ((i + 1) % BUILD_CHUNK === 0) yield true;
      }
    };
    // The snapshot's objects are this view's own (fresh from a read): shrunk in place, not copied.
    yield* chunked((t) => {
      const record = t.record;
      record.options = shared(record.options);
      if (record.dependsOn.length === 0) record.dependsOn = NO_DEPENDENCIES;
      if (t.state.token === 0 && t.state.status === 'pending') t.state = UNTOUCHED;
      this.tasks.set(record.name, t);
    });
    this.missingDeclared = new Set((this.container.definition ?? []).map((d) => d.name).filter((n) => !this.tasks.has(n)));
    yield* chunked((t) => {
      for (const d of t.record.dependsOn) {
        const list = this.dependents.get(d);
        if (list) list.push(t.record.name);
        else this.dependents.set(d, [t.record.name]);
      }
    });
    yield* chunked((t) => this.index(this.tasks.get(t.record.name)!, null));
    // Everything is new to the planner.
    for (const name of this.active) this.dirty.add(name);
    yield false;
  }

  /** Every declared task is present (always true without a declared graph, once there is a task). */
  get complete(): boolean {
    return this.container.definition ? this.missingDeclared.size === 0 : this.tasks.size > 0;
  }

  /** Some task has failed (for good: no retry left). */
  get hasFailed(): boolean {
    return this.failed.size > 0;
  }

  /** Every task is terminal. */
  get allTerminal(): boolean {
    return this.terminalCount === this.tasks.size;
  }

  get(name: string): TaskSnapshot | undefined {
    return this.tasks.get(name);
  }

  /** The tasks that depend on `name`. */
  dependentsOf(name: string): readonly string[] {
    return this.dependents.get(name) ?? [];
  }

  /**
   * Folds log entries of one task onto its state. Entries at or below the
   * state's position are ignored (already folded); returns false when the
   * first new entry does not follow the state's position (a gap: the caller
   * must read the log from there).
   */
  apply(name: string, entries: readonly Transition[]): boolean {
    const t = this.tasks.get(name);
    if (!t) return true;
    const fresh = entries.filter((e) => e.token > t.state.token).sort((a, b) => a.token - b.token);
    if (fresh.length === 0) return true;
    if (fresh[0]!.token !== t.state.token + 1) return false;
    this.setState(name, foldTransitions(fresh, t.state));
    return true;
  }

  /** Replaces a task's state (e.g. after an in-place update of a running claim). */
  setState(name: string, state: TaskState): void {
    const t = this.tasks.get(name);
    if (!t) return;
    const before = t.state;
    const next: TaskSnapshot = { record: t.record, state: state.status === 'succeeded' ? compactSucceeded(state, t.record.options.affinity !== undefined) : state };
    this.tasks.set(name, next);
    this.index(next, before);
    this.dirty.add(name);
  }

  /** Pops the next pending task whose dependencies all succeeded (priority, then declaration order), or null. */
  nextCandidate(): TaskSnapshot | null {
    while (this.heap.length > 0) {
      const top = this.pop();
      this.inHeap.delete(top.record.name);
      const current = this.tasks.get(top.record.name);
      if (current && current.state.status === 'pending' && (this.unmet.get(top.record.name) ?? 0) === 0) return current;
    }
    return null;
  }

  /**
   * Makes {@link nextCandidate} sweep from `order` up, then wrap around from
   * 0 (declaration order is `startAt(0)`, the default): runners that share a
   * container sweep from different places instead of racing for the same tasks.
   */
  startAt(order: number): void {
    if (order === this.origin) return;
    this.origin = order;
    const h = this.heap;
    for (let i = (h.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /**
   * The middle half of the longest run of candidates with consecutive orders
   * (nothing known taken or blocked between them), as `[from, to)` orders;
   * null when there is no candidate. Where a runner that shares the
   * container may start its sweep furthest from the others' (see {@link startAt}).
   */
  widestGap(): { from: number; to: number } | null {
    const orders: number[] = [];
    for (const t of this.heap) {
      const current = this.tasks.get(t.record.name);
      if (current?.state.status === 'pending' && (this.unmet.get(t.record.name) ?? 0) === 0) orders.push(t.record.order);
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
    const quarter = Math.floor(best.length / 4);
    return { from: best.start + quarter, to: best.start + best.length - quarter };
  }

  /** Puts a task popped by {@link nextCandidate} back (it could not start now). */
  requeue(t: TaskSnapshot): void {
    if (this.inHeap.has(t.record.name)) return;
    this.inHeap.add(t.record.name);
    this.push(t);
  }

  /** A snapshot of the tasks that are not succeeded (for the full planner), read at `readAt`. */
  activeSnapshot(readAt: Date): ContainerSnapshot {
    const tasks: TaskSnapshot[] = [];
    for (const name of this.active) tasks.push(this.tasks.get(name)!);
    tasks.sort((a, b) => a.record.order - b.record.order || a.record.name.localeCompare(b.record.name));
    return { container: this.container, tasks, readAt };
  }

  /** Keeps the indexes right after a task's state went from `before` (null: new) to `t.state`. */
  private index(t: TaskSnapshot, before: TaskState | null): void {
    const name = t.record.name;
    const now = t.state.status;
    const was = before?.status ?? null;
    const wasTerminal = was !== null && TERMINAL_STATUSES.has(was);
    const isTerminal = TERMINAL_STATUSES.has(now);
    if (isTerminal && !wasTerminal) this.terminalCount += 1;
    if (!isTerminal && wasTerminal) this.terminalCount -= 1;
    if (now === 'failed') this.failed.add(name);
    else this.failed.delete(name);
    if (now === 'succeeded') this.active.delete(name);
    else this.active.add(name);
    if (before === null) {
      let unmet = 0;
      for (const d of t.record.dependsOn) if (this.tasks.get(d)?.state.status !== 'succeeded') unmet += 1;
      if (unmet > 0) this.unmet.set(name, unmet);
    } else if ((was === 'succeeded') !== (now === 'succeeded')) {
      const delta = now === 'succeeded' ? -1 : 1;
      for (const dep of this.dependents.get(name) ?? []) {
        const n = (this.unmet.get(dep) ?? 0) + delta;
        if (n === 0) this.unmet.delete(dep);
        else this.unmet.set(dep, n);
        const d = this.tasks.get(dep);
        if (n === 0 && d && d.state.status === 'pending') this.requeue(d);
      }
    }
    if (now === 'pending' && (this.unmet.get(name) ?? 0) === 0) this.requeue(t);
  }

  private push(t: TaskSnapshot): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): TaskSnapshot {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(from: number): void {
    const h = this.heap;
    let i = from;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }

  /** Candidate order: higher priority first, then declaration order from {@link origin} up, then from 0 up to it, then name. */
  private before(a: TaskSnapshot, b: TaskSnapshot): boolean {
    const pa = priorityOf(a.record.options);
    const pb = priorityOf(b.record.options);
    if (pa !== pb) return pa > pb;
    const aWrapped = a.record.order < this.origin;
    const bWrapped = b.record.order < this.origin;
    if (aWrapped !== bWrapped) return bWrapped;
    return a.record.order < b.record.order || (a.record.order === b.record.order && a.record.name < b.record.name);
  }
}

/** What a succeeded state keeps of its own; the rest reads from a shared prototype (see {@link compactSucceeded}). */
// Not frozen: own fields are assigned over it, which a frozen prototype forbids. Never written to.
const SUCCEEDED: TaskState = { ...initialTaskState(), status: 'succeeded', progress: 1 };

/**
 * A succeeded state as the scheduler needs it, in a few own fields over a
 * shared prototype: most of a large container is succeeded tasks, held for
 * the whole run. `foldTransitions` reads every field (prototype included)
 * when it continues from such a state.
 */
function compactSucceeded(state: TaskState, keepRunner: boolean): TaskState {
  const s = Object.create(SUCCEEDED) as TaskState;
  s.token = state.token;
  s.attempt = state.attempt;
  s.output = state.output;
  s.endedAt = state.endedAt;
  if (state.failures !== 0) s.failures = state.failures;
  if (state.recoveries !== 0) s.recoveries = state.recoveries;
  if (state.lapses !== 0) s.lapses = state.lapses;
  // Tasks with an affinity key name their key's holder (see AffinityJudge).
  if (keepRunner && state.runnerId !== null) s.runnerId = state.runnerId;
  return s;
}

