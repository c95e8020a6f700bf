import { assertValidGraph, type GraphNode } from '../definition/graph.js';
import { resolveTaskOptions, type ResolvedTaskOptions } from '../definition/options.js';
import { CycleError, UnknownDependencyError } from '../errors.js';
import type { NewTask, TaskRecord } from '../store/types.js';
import type { RecordFields } from './values.js';

/** 0.0.1 defaults: 3 retries, 30 seconds apart. */
const DEFAULT_RETRIES = 3;
const DEFAULT_DELAY_MS = 30_000;

/**
 * Engine task options for 0.0.1 retry settings: a constant delay
 * (`factor: 1`, no jitter, `maxMs` equal to the delay so it is never capped).
 * Other options of an existing task (timeout, group, priority) are kept.
 */
export function compatTaskOptions(
  task: string,
  retries: number,
  delayMs: number,
  base?: ResolvedTaskOptions,
): ResolvedTaskOptions {
  return resolveTaskOptions(task, {
    retries,
    backoff: { initialMs: delayMs, factor: 1, jitter: 0, maxMs: delayMs },
    timeoutMs: base?.timeoutMs,
    group: base?.group ?? undefined,
    priority: base?.priority,
  });
}

/** The record of a task added through `addTask`. */
export function newCompatTask(name: string, f: RecordFields): NewTask {
  return {
    name,
    dependsOn: f.dependsOn ?? [],
    handler: f.handler ?? name,
    input: f.input ?? null,
    options: compatTaskOptions(name, f.retries ?? DEFAULT_RETRIES, f.delayMs ?? DEFAULT_DELAY_MS),
    dynamic: false,
    addedBy: null,
  };
}

/** The patch `updateTask` applies to an existing record (rename included). */
export function compatRecordPatch(current: TaskRecord, f: RecordFields): Partial<NewTask> {
  const patch: Partial<NewTask> = {};
  if (f.name !== undefined && f.name !== current.name) patch.name = f.name;
  if ('input' in f) patch.input = f.input ?? null;
  if (f.dependsOn !== undefined) patch.dependsOn = f.dependsOn;
  if (f.handler !== undefined) patch.handler = f.handler;
  if (f.retries !== undefined || f.delayMs !== undefined) {
    const o = current.options;
    patch.options =
      f.delayMs === undefined
        ? { ...o, backoff: { ...o.backoff }, retries: f.retries! }
        : compatTaskOptions(current.name, f.retries ?? o.retries, f.delayMs, o);
  }
  return patch;
}

/**
 * Checks the dependencies of one added or changed task against the tasks of
 * its container: each must exist and not lead back to the task. Dependencies
 * of other tasks that point at deleted tasks are ignored (0.0.1 allowed
 * deleting any task), so they never block an unrelated change.
 */
export function assertCompatDependencies(task: GraphNode, others: readonly GraphNode[]): void {
  const names = new Set(others.map((o) => o.name));
  for (const dep of task.dependsOn) {
    if (dep === task.name) throw new CycleError([task.name, task.name]);
    if (!names.has(dep)) throw new UnknownDependencyError(task.name, dep);
  }
  names.add(task.name);
  const nodes = [...others, task].map((n) => ({ name: n.name, dependsOn: n.dependsOn.filter((d) => names.has(d)) }));
  assertValidGraph(nodes);
}
