import { assertSafeName } from '../definition/names.js';
import { NotFoundError } from '../errors.js';
import type { ContainerSnapshot } from '../store/types.js';
import { addCompatTask } from './add-task.js';
import { deliver, type NodeCallback } from './callback.js';
import { findTask, loadContainer, type CompatContext } from './context.js';
import { deleteCompatTask } from './delete-task.js';
import { claimNextTask } from './next-task.js';
import { readTask, type CompatRead } from './task-reads.js';
import { CompatTask } from './task.js';
import { updateCompatTask } from './update-task.js';
import type { CompatTaskValues } from './values.js';

/**
 * A task container of the 0.0.1 API. Every method takes an optional
 * node-style callback; without one it returns a promise of the callback's
 * result. The object caches the task states it last read, which is what the
 * synchronous `isComplete()` answers from. Every method refreshes what it
 * reads: the methods on one task (`addTask`, `getTask`, `updateTask`,
 * `deleteTask`) read and refresh that task only, in a fixed number of
 * database commands whatever the container's size (as in 0.0.1, where they
 * worked on the container document already loaded); `getTasks`, `refresh`,
 * `isComplete(cb)` and `getNextTask` read every task.
 */
export class CompatContainer {
  /** The container's name. */
  readonly name: string;
  #tasks: CompatTask[] = [];
  /** False while tasks its definition declared are missing (then it is never complete). */
  #declaredPresent = true;

  /** @internal made by the compat client */
  constructor(
    private readonly ctx: CompatContext,
    snapshot: ContainerSnapshot,
  ) {
    this.name = snapshot.container.name;
    this.#remember(snapshot);
  }

  /**
   * True when the container has no tasks or all of them are complete.
   * Without a callback it answers synchronously from the task states this
   * object last read (as in 0.0.1, where a loaded container was a document);
   * with a callback it reads the tasks again first.
   */
  isComplete(): boolean;
  isComplete(callback: NodeCallback<boolean>): void;
  isComplete(callback?: NodeCallback<boolean>): boolean | void {
    if (callback === undefined || callback === null) return this.#complete();
    deliver(async () => {
      await this.#reload();
      return [this.#complete()] as const;
    }, callback);
  }

  /** Reads the container's tasks again (refreshing what `isComplete()` answers from). */
  refresh(): Promise<CompatContainer>;
  refresh(callback: NodeCallback<CompatContainer>): void;
  refresh(callback?: NodeCallback<CompatContainer>): Promise<CompatContainer> | void {
    return deliver(async () => {
      await this.#reload();
      return [this] as const;
    }, callback);
  }

  /**
   * Adds a task; its name must be unique in the container
   * ({@link DuplicateTaskError} otherwise). `values` may set any 0.0.1 field.
   */
  addTask(name: string, values?: CompatTaskValues | null): Promise<CompatTask>;
  addTask(name: string, values: CompatTaskValues | null | undefined, callback: NodeCallback<CompatTask>): void;
  addTask(name: string, callback: NodeCallback<CompatTask>): void;
  addTask(name: string, values?: unknown, callback?: unknown): Promise<CompatTask> | void {
    if (typeof values === 'function') [values, callback] = [undefined, values];
    return deliver(async () => {
      const read = await addCompatTask(await this.ctx.store(), this.name, name, values);
      return [this.#rememberFound(read, name)] as const;
    }, callback);
  }

  /** The task with this name, or null (reads that task only). */
  getTask(name: string): Promise<CompatTask | null>;
  getTask(name: string, callback: NodeCallback<CompatTask | null>): void;
  getTask(name: string, callback?: NodeCallback<CompatTask | null>): Promise<CompatTask | null> | void {
    return deliver(async () => {
      assertSafeName('task', name);
      const read = await readTask(await this.ctx.store(), this.name, name);
      return [this.#rememberRead({ ...read, name }) ?? null] as const;
    }, callback);
  }

  /** All tasks, in declaration order. */
  getTasks(): Promise<CompatTask[]>;
  getTasks(callback: NodeCallback<CompatTask[]>): void;
  getTasks(callback?: NodeCallback<CompatTask[]>): Promise<CompatTask[]> | void {
    return deliver(async () => {
      await this.#reload();
      return [[...this.#tasks]] as [CompatTask[]];
    }, callback);
  }

  /**
   * Changes a task ({@link NotFoundError} when it does not exist); `values.name`
   * renames it. Returns the task as it is afterwards.
   */
  updateTask(name: string, values: CompatTaskValues): Promise<CompatTask>;
  updateTask(name: string, values: CompatTaskValues, callback: NodeCallback<CompatTask>): void;
  updateTask(name: string, callback: NodeCallback<CompatTask>): void;
  updateTask(name: string, values: unknown, callback?: unknown): Promise<CompatTask> | void {
    // `updateTask(name, cb)`: no values, the task is read back unchanged.
    if (typeof values === 'function') [values, callback] = [{}, values];
    return deliver(async () => {
      const read = await updateCompatTask(await this.ctx.store(), this.name, name, values);
      return [this.#rememberFound(read, read.name)] as const;
    }, callback);
  }

  /** Deletes a task; returns it as it was before, or null when there was none. */
  deleteTask(name: string): Promise<CompatTask | null>;
  deleteTask(name: string, callback: NodeCallback<CompatTask | null>): void;
  deleteTask(name: string, callback?: NodeCallback<CompatTask | null>): Promise<CompatTask | null> | void {
    return deliver(async () => {
      const { deleted, read } = await deleteCompatTask(await this.ctx.store(), this.name, name);
      this.#rememberRead(read);
      return [deleted ? new CompatTask(deleted) : null] as const;
    }, callback);
  }

  /**
   * Hands out and leases the next task ready to run (declaration order: not
   * complete or failed, dependencies complete, not leased, retry time passed),
   * or null. Concurrent callers, in any process, never get the same task.
   * With a name (0.0.1's `getNextTask(name, cb)`), only that task is handed
   * out, when it is ready; a missing one is a {@link NotFoundError}.
   */
  getNextTask(name?: string | null): Promise<CompatTask | null>;
  getNextTask(callback: NodeCallback<CompatTask | null>): void;
  getNextTask(name: string | null | undefined, callback: NodeCallback<CompatTask | null>): void;
  getNextTask(name?: unknown, callback?: unknown): Promise<CompatTask | null> | void {
    if (typeof name === 'function') [name, callback] = [undefined, name];
    return deliver(async () => {
      if (name !== undefined && name !== null) assertSafeName('task', name);
      const only = (name ?? undefined) as string | undefined;
      const store = await this.ctx.store();
      const before = await loadContainer(store, this.name);
      if (only !== undefined && !findTask(before, only)) throw new NotFoundError('task', only, `not in container "${this.name}"`);
      const claimed = await claimNextTask(store, before, this.ctx, only);
      if (claimed === null) {
        this.#remember(before);
        return [null] as const;
      }
      // Every task was just read: refreshing the claimed one is enough.
      const read = await readTask(store, this.name, claimed);
      return [this.#rememberRead({ ...read, name: claimed }) ?? null] as const;
    }, callback);
  }

  #complete(): boolean {
    return this.#declaredPresent && this.#tasks.every((t) => t.isComplete());
  }

  /** Like #rememberRead, for a task that must be there (it was just written). */
  #rememberFound(read: CompatRead, task: string): CompatTask {
    const found = this.#rememberRead(read, task);
    if (!found) throw new NotFoundError('task', task, `not in container "${this.name}" (deleted meanwhile)`);
    return found;
  }

  async #reload(): Promise<void> {
    this.#remember(await loadContainer(await this.ctx.store(), this.name));
  }

  /**
   * Caches what a call read: every task, or the one task read (dropping it
   * when it is gone, and its old name after a rename). Returns the named task
   * (for a single-task read, the task read).
   */
  #rememberRead(read: CompatRead, task?: string): CompatTask | undefined {
    if ('all' in read) return this.#remember(read.all, task);
    const drop = new Set([read.name, ...(read.gone === undefined ? [] : [read.gone])]);
    this.#tasks = this.#tasks.filter((t) => !drop.has(t.name()));
    const found = read.task ? new CompatTask(read.task) : undefined;
    if (found) this.#tasks.push(found);
    const names = new Set(this.#tasks.map((t) => t.name()));
    this.#declaredPresent = (read.container.definition ?? []).every((d) => names.has(d.name));
    return found;
  }

  /** Caches the snapshot's tasks; returns the named one. */
  #remember(snapshot: ContainerSnapshot, task?: string): CompatTask | undefined {
    this.#tasks = snapshot.tasks.map((t) => new CompatTask(t));
    const names = new Set(snapshot.tasks.map((t) => t.record.name));
    this.#declaredPresent = (snapshot.container.definition ?? []).every((d) => names.has(d.name));
    if (task === undefined) return undefined;
    const found = findTask(snapshot, task);
    return found ? this.#tasks[snapshot.tasks.indexOf(found)] : undefined;
  }
}
