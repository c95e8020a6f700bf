import { TimeSlice } from '../../time-slice.js';
import { deriveContainerStateSliced } from '../container-state.js';
import { StreamingFold } from '../log-fold.js';
import type { Transition } from '../transition.js';
import { OUTPUT_NOT_READ, type ContainerSnapshot, type SnapshotOptions, type TaskRecord, type TaskSnapshot } from '../types.js';
import { toContainerRecord, toTaskRecord, type StoreContext } from './context.js';
import { readByKeys } from './keyed-read.js';
import type { ContainerDoc, TaskDoc, TransitionDoc } from './models.js';

/**
 * Documents per reply of a snapshot's reads. The driver decodes a reply's
 * documents one at a time as they are taken, and they are folded as they
 * come (a read holds one state per task, not the whole log); a reply this
 * size is about 100–300 KB, so the server is asked again before long.
 */
const BATCH = 1000;

/**
 * Calls `each` on every document of a cursor, letting the event loop through
 * whenever a slice of work has used its time (see {@link TimeSlice}): a read
 * of 100k documents never holds the loop longer than a slice plus one document.
 */
async function forEachDoc<T>(cursor: AsyncIterable<T>, slice: TimeSlice, each: (doc: T) => void): Promise<void> {
  for await (const doc of cursor) {
    each(doc);
    if (slice.due()) await slice.yield();
  }
}
export async function loadSnapshot(ctx: StoreContext, container: string, options: SnapshotOptions = {}): Promise<ContainerSnapshot | null> {
  const readAt = ctx.now();
  const withOutputs = options.outputs ?? true;
  // In this order, so the reads form a consistent view for the decisions
  // made from them: a task is inserted before any transition of its own or
  // of the attempt that added it, so every task a transition read refers
  // to is seen by the task read that follows it.
  const known = options.knownGraph;
  let doc = options.declared || known ? await readWithoutGraph(ctx, container) : await ctx.readContainerDoc('loadSnapshot', container);
  if (!doc || doc.deletedAt) return null;
  if (known && !options.declared) {
    // The graph of an incarnation never changes once written: the caller's stands for it.
    doc = (doc.incarnation ?? '') === known.incarnation ? { ...doc, definition: known.definition } : await ctx.readContainerDoc('loadSnapshot', container);
    if (!doc || doc.deletedAt) return null;
  }
  if (options.declared) {
    // The caller's graph stands for the stored one only while the definition it comes from is the applied one.
    // So does it where the stored graph (in pages) has the caller's graph's fingerprint.
    const a = doc.applied;
    const sameGraph = options.declared.graphFingerprint !== undefined && doc.graph?.fingerprint === options.declared.graphFingerprint;
    if (sameGraph || (a?.fingerprint === options.declared.fingerprint && a.revision === (doc.revision ?? 0))) {
      doc = { ...doc, definition: options.declared.graph };
    } else doc = await ctx.readContainerDoc('loadSnapshot', container);
    if (!doc || doc.deletedAt) return null;
  }
  const record = toContainerRecord(doc);
  const inc = doc.incarnation ?? '';
  ctx.pins.set(container, inc);
  // Documents of other incarnations (late writes of a deleted run) are not this container's.
  const mine = (d: { incarnation?: string }) => (d.incarnation ?? '') === inc;
  // Each try starts over (a transient error mid-stream retries the whole read).
  const readLog = () =>
    ctx.read(
      'loadSnapshot',
      async () => {
        const fold = new StreamingFold();
        const query = ctx.q(ctx.m.transitions.find({ container }, withOutputs ? {} : { output: 0 }).batchSize(BATCH).lean<TransitionDoc[]>(), 6);
        await forEachDoc(query.cursor() as AsyncIterable<TransitionDoc>, new TimeSlice(), (d) => {
          if (mine(d)) fold.add(d);
        });
        fold.finish();
        return fold;
      },
      6,
    );
  const readTasks = () =>
    ctx.read(
      'loadSnapshot',
      async () => {
        const records: TaskRecord[] = [];
        const query = ctx.q(ctx.m.tasks.find({ container }).batchSize(BATCH).lean<TaskDoc[]>(), 6);
        await forEachDoc(query.cursor() as AsyncIterable<TaskDoc>, new TimeSlice(), (d) => {
          if (mine(d)) records.push(toTaskRecord(d));
        });
        return records;
      },
      6,
    );
  let fold: StreamingFold;
  let tasks: TaskRecord[];
  const applied = doc.applied ?? null;
  const revision = doc.revision ?? 0;
  // The caller's records are the stored ones when the definition they come
  // from was recorded applied at the revision read: nothing changed a task
  // record, added or deleted a task since (each moves the revision on).
  const declared = options.declared && applied?.fingerprint === options.declared.fingerprint && applied.revision === revision ? options.declared : null;
  // A small container with a directory is read by exact `_id`s where a filter
  // would scan every container's documents (see keyed-read.ts).
  const keyed = ctx.keyedReads && doc.directory ? await readByKeys(ctx, container, inc, { outputs: withOutputs, recheck: !options.parallel }) : null;
  if (keyed) {
    fold = foldAll(keyed.log.filter(mine));
    tasks = keyed.tasks.filter(mine).map(toTaskRecord);
  } else if (declared) {
    // The log alone: on FerretDB a filtered read costs the server a scan of
    // its collection, so this is about half the work of reading both.
    fold = await readLog();
    tasks = declared.records();
  } else if (options.parallel) [fold, tasks] = await Promise.all([readLog(), readTasks()]);
  else {
    fold = await readLog();
    tasks = await readTasks();
  }
  // A task staged by an attempt is part of the container once that attempt succeeded.
  const visible = (t: TaskRecord) => {
    if (t.stagedBy === null || t.stagedBy === undefined || t.addedBy === null) return true;
    return fold.succeededAt(t.addedBy, t.stagedBy + 1);
  };
  // One pass over 100k records takes tens of ms on a loaded machine: in slices.
  const slice = new TimeSlice();
  const hiddenStaged: Array<{ addedBy: string; stagedBy: number }> = [];
  let sorted = true;
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!;
    if (!visible(t)) hiddenStaged.push({ addedBy: t.addedBy!, stagedBy: t.stagedBy! });
    if (sorted && i > 0 && byOrder(tasks[i - 1]!, t) > 0) sorted = false;
    if (slice.due()) await slice.yield();
  }
  const records = hiddenStaged.length === 0 ? tasks : tasks.filter(visible);
  // Declared records, and documents read in the order they were inserted,
  // come in order already: a sort of 100k with a comparator took 74-120 ms in one call.
  if (!sorted) records.sort(byOrder);
  const snapshots: TaskSnapshot[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const state = fold.stateOf(records[i]!.name);
    if (!withOutputs && state.status === 'succeeded') state.output = OUTPUT_NOT_READ;
    snapshots[i] = { record: records[i]!, state };
    if (slice.due()) await slice.yield();
  }
  const derived = await deriveContainerStateSliced(record, snapshots, slice);
  return {
    container: { ...record, status: derived.status, finishedAt: derived.finishedAt },
    tasks: snapshots,
    readAt,
    revision,
    hiddenStaged,
    applied,
    fromDeclared: declared !== null && !keyed,
  };
}

const byOrder = (a: TaskRecord, b: TaskRecord): number => a.order - b.order || a.name.localeCompare(b.name);

/** A fold of entries already in memory (a keyed read's). */
function foldAll(log: readonly Transition[]): StreamingFold {
  const fold = new StreamingFold();
  for (const t of log) fold.add(t);
  fold.finish();
  return fold;
}

/** The container document without its declared graph (most of a large container's document). */
function readWithoutGraph(ctx: StoreContext, container: string): Promise<ContainerDoc | null> {
  return ctx.read('loadSnapshot', () => ctx.q(ctx.m.containers.findById(container, { definition: 0 }).lean<ContainerDoc>()).exec());
}
