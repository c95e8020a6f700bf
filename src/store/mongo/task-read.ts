import { foldTransitions } from '../fold.js';
import type { Transition } from '../transition.js';
import type { ContainerFields, TaskRead, TaskRecord, TaskRecordsRead } from '../types.js';
import { toContainerRecord, toTaskRecord, type StoreContext } from './context.js';
import { taskKey, transitionKey } from './keys.js';
import type { TaskDoc, TransitionDoc } from './models.js';

/**
 * Narrow reads of single tasks, for callers that work on one task at a time
 * (the 0.0.1 API). Each costs a fixed number of commands whatever the size of
 * the container: exact `_id` lookups (indexed on every server), plus at most
 * one `find` on a task's log. They apply the rules of `loadSnapshot`: a
 * tombstoned container is gone, only documents of the container's current
 * incarnation count, and a staged task is there only once the attempt that
 * staged it succeeded.
 */

/** The container's document as a head and its incarnation, or null when missing or tombstoned; pins the incarnation like every read. */
async function readHead(ctx: StoreContext, operation: string, container: string): Promise<{ head: ContainerFields; inc: string } | null> {
  const doc = await ctx.readContainerDoc(operation, container);
  if (!doc || doc.deletedAt) return null;
  const inc = doc.incarnation ?? '';
  ctx.pins.set(container, inc);
  const { status: _status, finishedAt: _finishedAt, ...head } = toContainerRecord(doc);
  return { head, inc };
}

/** One task document by its exact `_id`, or null. */
function readTaskDoc(ctx: StoreContext, operation: string, container: string, name: string, inc: string): Promise<TaskDoc | null> {
  return ctx.read(operation, () => ctx.q(ctx.m.tasks.findById(taskKey(container, name, inc)).lean<TaskDoc>()).exec());
}

/** False for a task staged by an attempt whose success is not recorded (one exact read, only for staged tasks). */
async function isVisible(ctx: StoreContext, operation: string, doc: TaskDoc, inc: string): Promise<boolean> {
  if (doc.stagedBy === null || doc.stagedBy === undefined || doc.addedBy === null) return true;
  const id = transitionKey(doc.container, doc.addedBy, doc.stagedBy + 1, inc);
  const outcome = await ctx.read(operation, () => ctx.q(ctx.m.transitions.findById(id, { kind: 1 }).lean<{ kind?: string }>()).exec());
  return outcome?.kind === 'succeeded';
}

/** Keeps documents of the incarnation `inc` (late writes of a deleted run are not this container's). */
const ofIncarnation = (inc: string) => (d: { incarnation?: string }) => (d.incarnation ?? '') === inc;

/**
 * One task with its state folded from its log, and its container's head.
 * Commands: the container (by `_id`), the task's log (one `find`), the task
 * (by `_id`), and for a staged task the outcome that makes it visible. The
 * log is read before the task, as `loadSnapshot` does: a task is inserted
 * before its first transition and deleted after its last, so a task read
 * after its log never shows a log missing (a delete in between reads as gone).
 */
export async function loadTask(ctx: StoreContext, container: string, name: string): Promise<TaskRead | null> {
  const read = await readHead(ctx, 'loadTask', container);
  if (!read) return null;
  const { head, inc } = read;
  // The incarnation in the filter lets MongoDB use the log's unique index; legacy entries have none.
  // Where only exact `_id`s are indexed (FerretDB v1), the log is probed position by position instead.
  const filter = inc ? { container, incarnation: inc, task: name } : { container, task: name };
  const log = ctx.keyedReads
    ? await probeLog(ctx, container, name, inc)
    : (await ctx.read('loadTask', () => ctx.q(ctx.m.transitions.find(filter).lean<TransitionDoc[]>()).exec())).filter(ofIncarnation(inc));
  const doc = await readTaskDoc(ctx, 'loadTask', container, name, inc);
  if (!doc || !(await isVisible(ctx, 'loadTask', doc, inc))) return { container: head, task: null };
  const state = foldTransitions(log.sort((a, b) => a.token - b.token));
  return { container: head, task: { record: toTaskRecord(doc), state } };
}

/** A task's log by exact `_id`s, position 1 on, until the first free position. */
async function probeLog(ctx: StoreContext, container: string, task: string, inc: string): Promise<Transition[]> {
  const out: Transition[] = [];
  for (let token = 1; ; token++) {
    const id = transitionKey(container, task, token, inc);
    const doc = await ctx.read('loadTask', () => ctx.q(ctx.m.transitions.findById(id).lean<TransitionDoc>()).exec());
    if (!doc) return out;
    out.push(doc);
  }
}

/**
 * The records (no state) of the named tasks that exist, in the order asked,
 * and the container's head. Commands: the container, then one exact `_id`
 * read per name (sent together), plus one per staged task found.
 */
export async function loadTaskRecords(ctx: StoreContext, container: string, names: readonly string[]): Promise<TaskRecordsRead | null> {
  const read = await readHead(ctx, 'loadTaskRecords', container);
  if (!read) return null;
  const { head, inc } = read;
  const unique = [...new Set(names)];
  const docs = await Promise.all(unique.map((n) => readTaskDoc(ctx, 'loadTaskRecords', container, n, inc)));
  const visible = await Promise.all(docs.map((d) => (d ? isVisible(ctx, 'loadTaskRecords', d, inc) : false)));
  const records = docs.filter((d, i): d is TaskDoc => d !== null && visible[i]!).map(toTaskRecord);
  return { container: head, records };
}

/**
 * The records of the tasks that depend on `task`, in declaration order; empty
 * when there are none or the container is gone. One `find` (plus one exact
 * read per staged task found); it filters on `dependsOn`, which no index
 * covers, so the server scans the container's tasks, but only the
 * dependents come back.
 */
export async function loadDependents(ctx: StoreContext, container: string, task: string): Promise<TaskRecord[]> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return [];
  const filter = inc ? { container, incarnation: inc, dependsOn: task } : { container, dependsOn: task };
  const docs = (await ctx.read('loadDependents', () => ctx.q(ctx.m.tasks.find(filter).lean<TaskDoc[]>()).exec())).filter(
    ofIncarnation(inc),
  );
  const visible = await Promise.all(docs.map((d) => isVisible(ctx, 'loadDependents', d, inc)));
  return docs
    .filter((_, i) => visible[i])
    .sort((a, b) => a.order - b.order || a.name.localeCompare(b.name))
    .map(toTaskRecord);
}
