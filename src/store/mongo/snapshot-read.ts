import { deriveContainerState } from '../container-state.js';
import { foldTransitions } from '../fold.js';
import type { Transition } from '../transition.js';
import { OUTPUT_NOT_READ, type ContainerSnapshot, type SnapshotOptions } from '../types.js';
import { toContainerRecord, toTaskRecord, type StoreContext } from './context.js';
import { readByKeys } from './keyed-read.js';
import type { TaskDoc, TransitionDoc } from './models.js';

/** Documents per reply of a snapshot's reads (servers cap a reply at 16 MiB whatever this says). */
const BATCH = 10_000;

export async function loadSnapshot(ctx: StoreContext, container: string, options: SnapshotOptions = {}): Promise<ContainerSnapshot | null> {
  const readAt = ctx.now();
  const withOutputs = options.outputs ?? true;
  // In this order, so the reads form a consistent view for the decisions
  // made from them: a task is inserted before any transition of its own or
  // of the attempt that added it, so every task a transition read refers
  // to is seen by the task read that follows it.
  const doc = await ctx.readContainerDoc('loadSnapshot', container);
  if (!doc || doc.deletedAt) return null;
  const record = toContainerRecord(doc);
  const inc = doc.incarnation ?? '';
  ctx.pins.set(container, inc);
  // Documents of other incarnations (late writes of a deleted run) are not this container's.
  const mine = (d: { incarnation?: string }) => (d.incarnation ?? '') === inc;
  const readLog = () =>
    ctx.read('loadSnapshot', () => ctx.q(ctx.m.transitions.find({ container }, withOutputs ? {} : { output: 0 }).batchSize(BATCH).lean<TransitionDoc[]>(), 6).exec(), 6);
  const readTasks = () => ctx.read('loadSnapshot', () => ctx.q(ctx.m.tasks.find({ container }).batchSize(BATCH).lean<TaskDoc[]>(), 6).exec(), 6);
  let logDocs: TransitionDoc[];
  let taskDocs: TaskDoc[];
  // A small container with a directory is read by exact `_id`s where a filter
  // would scan every container's documents (see keyed-read.ts).
  const keyed = ctx.keyedReads && doc.directory ? await readByKeys(ctx, container, inc, { outputs: withOutputs, recheck: !options.parallel }) : null;
  if (keyed) ({ tasks: taskDocs, log: logDocs } = keyed);
  else if (options.parallel) [logDocs, taskDocs] = await Promise.all([readLog(), readTasks()]);
  else {
    logDocs = await readLog();
    taskDocs = await readTasks();
  }
  const log = logDocs.filter(mine);
  const tasks = taskDocs.filter(mine);
  const byTask = new Map<string, Transition[]>();
  for (const t of log) {
    const list = byTask.get(t.task);
    if (list) list.push(t);
    else byTask.set(t.task, [t]);
  }
  // A task staged by an attempt is part of the container once that attempt succeeded.
  const visible = (doc: TaskDoc) => {
    if (doc.stagedBy === null || doc.stagedBy === undefined || doc.addedBy === null) return true;
    const outcome = byTask.get(doc.addedBy)?.find((t) => t.token === doc.stagedBy! + 1);
    return outcome?.kind === 'succeeded';
  };
  const hiddenStaged = tasks.filter((d) => !visible(d)).map((d) => ({ addedBy: d.addedBy!, stagedBy: d.stagedBy! }));
  const snapshots = tasks
    .filter(visible)
    .sort((a, b) => a.order - b.order || a.name.localeCompare(b.name))
    .map((doc) => ({
      record: toTaskRecord(doc),
      state: foldTransitions((byTask.get(doc.name) ?? []).sort((a, b) => a.token - b.token)),
    }));
  if (!withOutputs) for (const t of snapshots) if (t.state.status === 'succeeded') t.state.output = OUTPUT_NOT_READ;
  const derived = deriveContainerState(record, snapshots);
  return {
    container: { ...record, status: derived.status, finishedAt: derived.finishedAt },
    tasks: snapshots,
    readAt,
    revision: doc.revision ?? 0,
    hiddenStaged,
  };
}

