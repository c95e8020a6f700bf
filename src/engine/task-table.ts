import { priorityOf, type ResolvedTaskOptions } from '../definition/options.js';
import type { TaskRecord } from '../store/types.js';

/** A handler id meaning "the handler named like the task" (every task declared in code). */
const SAME_AS_NAME = 0xffffffff;
const DYNAMIC = 1;
/** The task has an input: read from the store when its attempt starts, never held. */
const HAS_INPUT = 2;

const NO_NAMES: string[] = Object.freeze([]) as unknown as string[];

/** What {@link TaskTable.add} takes of a task's record. */
export type TableRecord = Pick<TaskRecord, 'name' | 'dependsOn' | 'handler' | 'input' | 'options' | 'order'> &
  Partial<Pick<TaskRecord, 'dynamic' | 'addedBy' | 'stagedBy' | 'createdAt'>>;

/**
 * The static part of a runner's picture of a container, column-wise: what
 * each task is (name, dependencies, handler, options, declaration order),
 * not where it is. A task is an index (0 to `size - 1`); names are held
 * once, options and handler names once per distinct value, dependencies and
 * dependents as index arrays (compressed sparse rows), and inputs not at all
 * (a flag says a task has one, read when its attempt starts). About 60 bytes
 * a task besides its name, against about 500 for one record object each.
 *
 * Filled once with {@link add} then {@link link}; the task set of a picture
 * never changes (tasks added to the container are seen by reading it again).
 */
export class TaskTable {
  readonly names: string[];
  private readonly indexOf = new Map<string, number>();
  readonly order: Float64Array;
  private readonly createdAt: Float64Array;
  private readonly flags: Uint8Array;
  private readonly handlerId: Uint32Array;
  private readonly handlers: string[] = [];
  private handlerIds: Map<string, number> | null = new Map();
  private readonly optionsId: Uint32Array;
  private readonly optionsList: ResolvedTaskOptions[] = [];
  private readonly priorities: number[] = [];
  private optionIds: Map<string, number> | null = new Map();
  /** The options object interned last, and its id (tasks often share one object). */
  private lastOptions: { object: ResolvedTaskOptions; id: number } | null = null;
  /** Dynamic tasks' adders (sparse: declared tasks have none). */
  private readonly staging = new Map<number, { addedBy: string | null; stagedBy: number | null }>();
  /** Dependencies of task i: `deps[depStart[i]]` up to `deps[depStart[i + 1]]`; a task index, or `-(k + 1)` for `missing[k]` (not in the picture). */
  private depStart: Int32Array;
  private deps: Int32Array = new Int32Array(0);
  private readonly missing: string[] = [];
  /** The tasks that depend on task i: `dependents[dependentStart[i]]` up to `dependents[dependentStart[i + 1]]`. */
  private dependentStart: Int32Array = new Int32Array(1);
  private dependents: Int32Array = new Int32Array(0);
  /** Dependency names, per task, until {@link link} resolves them. */
  private pendingDeps: Array<readonly string[]> | null = [];
  /** Tasks added so far. */
  size = 0;

  constructor(readonly container: string, capacity: number) {
    this.names = new Array<string>(capacity);
    this.order = new Float64Array(capacity);
    this.createdAt = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.handlerId = new Uint32Array(capacity);
    this.optionsId = new Uint32Array(capacity);
    this.depStart = new Int32Array(capacity + 1);
  }

  /**
   * Adds a task (a name already present is ignored); returns its index.
   * `order` and `createdAt` default to the record's.
   */
  add(r: Omit<TableRecord, 'order' | 'createdAt'> & Partial<Pick<TableRecord, 'order' | 'createdAt'>>, order = r.order ?? 0, createdAt = r.createdAt): number {
    const known = this.indexOf.get(r.name);
    if (known !== undefined) return known;
    const i = this.size++;
    this.names[i] = r.name;
    this.indexOf.set(r.name, i);
    this.order[i] = order;
    this.createdAt[i] = createdAt ? createdAt.getTime() : 0;
    this.flags[i] = (r.dynamic ? DYNAMIC : 0) | (r.input !== null && r.input !== undefined ? HAS_INPUT : 0);
    this.handlerId[i] = r.handler === r.name ? SAME_AS_NAME : this.intern(r.handler);
    this.optionsId[i] = this.internOptions(r.options);
    if ((r.addedBy ?? null) !== null || (r.stagedBy ?? null) !== null) this.staging.set(i, { addedBy: r.addedBy ?? null, stagedBy: r.stagedBy ?? null });
    this.pendingDeps!.push(r.dependsOn.length === 0 ? NO_NAMES : r.dependsOn);
    return i;
  }

  /** Resolves dependencies to indexes and builds the dependents; call once, after the last {@link add}. */
  link(): void {
    for (const _ of this.linking()) void _;
  }

  /** {@link link}, yielding after each task resolved (where a caller may let the event loop through). */
  *linking(): Generator<void> {
    const pending = this.pendingDeps!;
    this.pendingDeps = null;
    this.handlerIds = null;
    this.optionIds = null;
    this.lastOptions = null;
    const n = this.size;
    let total = 0;
    for (let i = 0; i < n; i++) total += pending[i]!.length;
    const deps = new Int32Array(total);
    const missingIds = new Map<string, number>();
    const dependentCount = new Int32Array(n + 1);
    let k = 0;
    for (let i = 0; i < n; i++) {
      this.depStart[i] = k;
      for (const d of pending[i]!) {
        const j = this.indexOf.get(d);
        if (j !== undefined) {
          deps[k++] = j;
          dependentCount[j + 1]! += 1;
          continue;
        }
        let m = missingIds.get(d);
        if (m === undefined) {
          m = this.missing.push(d) - 1;
          missingIds.set(d, m);
        }
        deps[k++] = -(m + 1);
      }
      pending[i] = NO_NAMES; // let the records' arrays go as soon as they are read
      yield;
    }
    this.depStart[n] = k;
    this.deps = deps;
    for (let i = 0; i < n; i++) dependentCount[i + 1]! += dependentCount[i]!;
    const dependents = new Int32Array(dependentCount[n]!);
    const fill = dependentCount.slice(0, n);
    for (let i = 0; i < n; i++) {
      for (let p = this.depStart[i]!; p < this.depStart[i + 1]!; p++) {
        const j = deps[p]!;
        if (j >= 0) dependents[fill[j]!++] = i;
      }
    }
    this.dependentStart = dependentCount;
    this.dependents = dependents;
  }

  /** The index of a task, or undefined when the picture has no such task. */
  index(name: string): number | undefined {
    return this.indexOf.get(name);
  }

  has(name: string): boolean {
    return this.indexOf.has(name);
  }

  options(i: number): ResolvedTaskOptions {
    return this.optionsList[this.optionsId[i]!]!;
  }

  /** Some task's options satisfy `test` (looks at each distinct options once). */
  anyOption(test: (o: ResolvedTaskOptions) => boolean): boolean {
    return this.optionsList.some(test);
  }

  priority(i: number): number {
    return this.priorities[this.optionsId[i]!]!;
  }

  /** Whether the task has an input (read from the store when it starts). */
  hasInput(i: number): boolean {
    return (this.flags[i]! & HAS_INPUT) !== 0;
  }

  /** Calls `each` with the index of each dependency present in the picture. */
  forEachDependency(i: number, each: (j: number) => void): void {
    for (let p = this.depStart[i]!; p < this.depStart[i + 1]!; p++) if (this.deps[p]! >= 0) each(this.deps[p]!);
  }

  /** Dependencies, counting those missing from the picture. */
  dependencyCount(i: number): number {
    return this.depStart[i + 1]! - this.depStart[i]!;
  }

  /** Calls `each` with the index of each task that depends on task i. */
  forEachDependent(i: number, each: (j: number) => void): void {
    for (let p = this.dependentStart[i]!; p < this.dependentStart[i + 1]!; p++) each(this.dependents[p]!);
  }

  dependentCount(i: number): number {
    return this.dependentStart[i + 1]! - this.dependentStart[i]!;
  }

  /** The names of the tasks that depend on task i. */
  dependentNames(i: number): string[] {
    const out: string[] = [];
    this.forEachDependent(i, (j) => out.push(this.names[j]!));
    return out;
  }

  /**
   * Task i's record, made anew (callers may keep it). Its `input` is null;
   * see {@link hasInput}.
   */
  record(i: number): TaskRecord {
    const dependsOn: string[] = [];
    for (let p = this.depStart[i]!; p < this.depStart[i + 1]!; p++) {
      const j = this.deps[p]!;
      dependsOn.push(j >= 0 ? this.names[j]! : this.missing[-j - 1]!);
    }
    const id = this.handlerId[i]!;
    const staging = this.staging.get(i);
    return {
      container: this.container,
      name: this.names[i]!,
      dependsOn,
      handler: id === SAME_AS_NAME ? this.names[i]! : this.handlers[id]!,
      input: null,
      options: this.options(i),
      dynamic: (this.flags[i]! & DYNAMIC) !== 0,
      addedBy: staging?.addedBy ?? null,
      stagedBy: staging?.stagedBy ?? null,
      order: this.order[i]!,
      createdAt: new Date(this.createdAt[i]!),
    };
  }

  private intern(handler: string): number {
    let id = this.handlerIds!.get(handler);
    if (id === undefined) {
      id = this.handlers.push(handler) - 1;
      this.handlerIds!.set(handler, id);
    }
    return id;
  }

  /** One id per distinct options (by value). */
  private internOptions(o: ResolvedTaskOptions): number {
    const last = this.lastOptions;
    // Tasks declared alike resolve to equal objects: compared in place, no key made.
    if (last && (last.object === o || sameValue(last.object, o))) return last.id;
    const key = JSON.stringify(o);
    let id = this.optionIds!.get(key);
    if (id === undefined) {
      id = this.optionsList.push(o) - 1;
      this.priorities.push(priorityOf(o));
      this.optionIds!.set(key, id);
    }
    this.lastOptions = { object: o, id };
    return id;
  }
}

/** Deep equality of plain JSON-like values (options: numbers, strings, booleans, null, plain objects, arrays), allocating nothing. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let count = 0;
  for (const key in x) {
    if (!Object.hasOwn(x, key)) continue;
    count += 1;
    if (!Object.hasOwn(y, key) || !sameValue(x[key], y[key])) return false;
  }
  for (const key in y) if (Object.hasOwn(y, key)) count -= 1;
  return count === 0;
}
