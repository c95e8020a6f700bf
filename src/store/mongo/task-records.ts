import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { NewTask, NewTasks } from '../types.js';
import type { StoreContext } from './context.js';
import { addToDirectory } from './directory.js';
import { isDuplicateKeyError, ofIncarnation, taskKey, transitionKey } from './keys.js';
import { asTransient, hasWriteConcernError } from './append-batch.js';
import { assertFits } from './task-log.js';
import type { TaskDoc, TransitionDoc } from './models.js';

/** Writes of task records: adding (idempotent by name), restaging, editing, renaming and deleting tasks. */

/** Documents per `insertMany` command of {@link addTasks}. */
export const INSERT_CHUNK = 500;

/** Dependencies under which a task without an input cannot reach the BSON limit (10,000 names of 200 characters: about 2 MB). */
const SMALL_DEPENDENCIES = 10_000;

/**
 * Adds tasks to a container, idempotently by name; returns the names this
 * call inserted (or restaged, see {@link restage}), in declaration order.
 *
 * The documents go out as unordered `insertMany` commands of up to
 * {@link INSERT_CHUNK} each (one round trip per chunk instead of one per task).
 * A name that already exists is a duplicate key for its document only; the
 * others are inserted. `order` is `base + i` (base: now in µs, i: the index in
 * `tasks`), so tasks keep their declaration order. A name repeated within
 * `tasks` counts once (its first occurrence).
 *
 * Each chunk goes through `ctx.write` (deadline `operationTimeoutMs`, transient
 * errors retried for `writeRetryMs`). A retried chunk meets the documents its
 * own lost try inserted as duplicates: every document of one call carries the
 * same random `nonce`, and a duplicate whose stored document has our nonce is
 * ours (counted as inserted). Comparing `createdAt`/`order` instead would
 * mistake two callers that started in the same millisecond for one another.
 * Duplicates are only read back (one `_id: { $in }` query per chunk) on a
 * retried chunk, for staged tasks, or when the server's error did not say
 * which documents failed.
 *
 * @returns the names inserted or restaged by this call; [] when the container does not exist
 * @throws UnstorableValueError when an input cannot be stored (see {@link assertStorableTasks}); nothing is written
 * @throws OperationTimeoutError when a chunk got no reply within the deadline and retries ran out
 * @throws the driver's error for anything but a duplicate key (a document too large, …)
 */
export async function addTasks(ctx: StoreContext, container: string, tasks: NewTasks): Promise<string[]> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return [];
  const now = new Date();
  const base = now.getTime() * 1000;
  const nonce = randomBytes(8).toString('hex');
  // Documents are made a chunk at a time, never all at once: adding a
  // million tasks holds one chunk of documents, not a million.
  const toDoc = (i: number): TaskDoc => {
    const t = tasks.at(i)!;
    return {
      _id: taskKey(container, t.name, inc),
      container,
      ...(inc ? { incarnation: inc } : {}),
      name: t.name,
      dependsOn: [...t.dependsOn],
      handler: t.handler,
      input: t.input ?? null,
      options: t.options,
      dynamic: t.dynamic ?? false,
      addedBy: t.addedBy ?? null,
      stagedBy: t.stagedBy ?? null,
      order: base + i,
      createdAt: now,
      nonce,
    };
  };
  // The first occurrence of each name, in declaration order.
  const picked = firstOccurrences(tasks);
  // Every input is judged before the first insert: a bad one writes nothing.
  for (const [n, i] of picked.entries()) {
    // A document is made only when it could pass the size limit: one
    // without an input, with fewer than SMALL_DEPENDENCIES dependencies
    // (names of at most 200 characters), weighs a few MB at most.
    const t = tasks.at(i)!;
    if ((t.input ?? null) !== null || t.dependsOn.length >= SMALL_DEPENDENCIES) await assertStorableTasks(ctx, [toDoc(i)]);
    if ((n + 1) % INSERT_CHUNK === 0) await yieldToLoop();
  }
  // Per picked task, 1 once this call inserted or restaged it (a byte a task, not a set of names).
  const added = new Uint8Array(picked.length);
  for (let start = 0; start < picked.length; start += INSERT_CHUNK) {
    const chunk = Array.from(picked.subarray(start, start + INSERT_CHUNK), toDoc);
    // Listed before they exist: a directory never misses a task (see directory.ts).
    await addToDirectory(ctx, container, inc, chunk.map((d) => d.name));
    const { taken, verify } = await insertChunk(ctx, chunk);
    const contested: number[] = [];
    for (const [j, doc] of chunk.entries()) {
      if (!taken.has(j)) added[start + j] = 1;
      else if (verify || isStaged(doc)) contested.push(j); // else a first try's duplicate key: someone else's
    }
    if (contested.length === 0) continue;
    const stored = await readTasks(ctx, contested.map((j) => chunk[j]!._id));
    for (const j of contested) {
      const doc = chunk[j]!;
      const existing = stored.get(doc._id);
      // Nothing stored under the name: the server refused this document itself.
      if (!existing) throw refusal(taken.get(j), doc.name);
      if (await restageOver(ctx, container, inc, doc, existing)) added[start + j] = 1;
    }
  }
  const names: string[] = [];
  for (const [n, i] of picked.entries()) if (added[n]) names.push(tasks.at(i)!.name);
  return names;
}

/** Indexes of the first task of each name, in order (every index when the names are known distinct: no set of a million names). */
function firstOccurrences(tasks: NewTasks): Uint32Array {
  const picked = new Uint32Array(tasks.length);
  if (tasks.distinct) {
    for (let i = 0; i < tasks.length; i++) picked[i] = i;
    return picked;
  }
  const seen = new Set<string>();
  let n = 0;
  for (let i = 0; i < tasks.length; i++) {
    const name = tasks.at(i)!.name;
    if (seen.has(name)) continue;
    seen.add(name);
    picked[n++] = i;
  }
  return picked.subarray(0, n);
}

/**
 * Refuses, before anything is written, a task whose input this server cannot
 * store faithfully (path and rule named) or whose document would pass the
 * 16 MiB BSON limit (size and limit named).
 * @throws UnstorableValueError for the first such task
 */
export async function assertStorableTasks(ctx: StoreContext, tasks: ReadonlyArray<{ name: string; input?: unknown }>): Promise<void> {
  for (const t of tasks) {
    await ctx.assertStorable('input', t.name, t.input ?? null);
    assertFits('input', t.name, t as Record<string, unknown>);
  }
}

/**
 * One unordered `insertMany` under `ctx.write`. `taken`: indexes (in `chunk`)
 * of the documents the reply refused, each with the server's error;
 * `verify`: those may include our own documents (the chunk was retried, the
 * server did not say precisely which failed, or it gave another code than
 * MongoDB's duplicate key: FerretDB v2 reports 16908292).
 */
async function insertChunk(ctx: StoreContext, chunk: TaskDoc[]): Promise<{ taken: Map<number, unknown>; verify: boolean }> {
  let tries = 0;
  let precise = true;
  const taken = await ctx.write('addTasks', async (o) => {
    tries++;
    try {
      await ctx.m.tasks.collection.insertMany(asRaw(chunk), { ordered: false, ...o });
      return new Map<number, unknown>();
    } catch (error) {
      const refused = refusedOf(error, chunk.length);
      precise = refused.precise;
      return refused.taken;
    }
  });
  return { taken, verify: tries > 1 || !precise };
}

/**
 * The per-document verdicts of an unordered bulk insert of `n` documents:
 * the indexes the reply refused, with their errors. A write-concern error
 * is rethrown as transient (the inserts happened but are not confirmed; the
 * retry recognises them by nonce), an error naming no document as it is.
 * `precise` is false unless every refusal is MongoDB's duplicate key at a
 * valid index and the counts add up; then every refused document is read back.
 */
function refusedOf(error: unknown, n: number): { taken: Map<number, unknown>; precise: boolean } {
  const e = error as { writeErrors?: unknown; insertedCount?: unknown; result?: { insertedCount?: unknown } };
  if (hasWriteConcernError(error)) throw asTransient(error);
  const raw = e?.writeErrors;
  const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<{ code?: number; index?: number }>;
  if (writeErrors.length === 0) throw error;
  const inserted = e.insertedCount ?? e.result?.insertedCount;
  const indexes = writeErrors.map((w) => w.index);
  const precise =
    indexes.every((i) => Number.isInteger(i) && i! >= 0 && i! < n) &&
    writeErrors.every((w) => w.code === 11000) &&
    inserted === n - indexes.length;
  if (precise) return { taken: new Map(writeErrors.map((w) => [w.index!, w])), precise };
  // Without a precise report every document may be refused, or ours: all are read back.
  return { taken: new Map(Array.from({ length: n }, (_, i) => [i, writeErrors.find((w) => w.index === i) ?? error])), precise };
}

/** The error of a document the server refused (its name was read back free). */
function refusal(error: unknown, name: string): Error {
  if (error instanceof Error) return error;
  const w = error as { code?: unknown; errmsg?: unknown } | undefined;
  return Object.assign(new Error(`The server refused task "${name}" (code ${String(w?.code ?? 'none')}): ${String(w?.errmsg ?? 'no message')}`), {
    code: w?.code,
  });
}

/** Documents with string `_id`s, typed for the driver's collection (whose default `_id` type is ObjectId). */
const asRaw = <T extends { _id: string }>(docs: T[]): Array<{ _id?: never }> => docs as unknown as Array<{ _id?: never }>;

const isStaged = (doc: TaskDoc): boolean => doc.stagedBy !== null && doc.stagedBy !== undefined && doc.addedBy !== null;

/** The stored task document with this `_id`, or null (one indexed point read, under the read deadline). */
function readTask(ctx: StoreContext, operation: string, id: string): Promise<TaskDoc | null> {
  return ctx.read(operation, () => ctx.q(ctx.m.tasks.findById(id).lean<TaskDoc>()).exec());
}

/**
 * The stored task documents with these `_id`s, by `_id`: one query (indexed on
 * MongoDB; one scan on FerretDB, cheaper there than a point read per id),
 * under the whole-container read deadline.
 */
async function readTasks(ctx: StoreContext, ids: string[]): Promise<Map<string, TaskDoc>> {
  const docs = await ctx.read('addTasks', () => ctx.q(ctx.m.tasks.find({ _id: { $in: ids } }).lean<TaskDoc[]>(), 6).exec(), 6);
  return new Map(docs.map((d) => [d._id, d]));
}

/**
 * A staged task whose name is taken by a task staged earlier by an attempt
 * of the same adder that never succeeded (it died or was fenced off) takes
 * its place; true when it did (or an earlier try of this call did).
 * @throws OperationTimeoutError when a read or the replace got no reply in time
 */
export async function restage(ctx: StoreContext, container: string, inc: string, doc: TaskDoc): Promise<boolean> {
  if (!isStaged(doc)) return false;
  const existing = await readTask(ctx, 'restage', doc._id);
  return existing !== null && restageOver(ctx, container, inc, doc, existing);
}

/** {@link restage} given the stored document `existing` at `doc._id`; true also when `existing` is ours (same nonce). */
async function restageOver(ctx: StoreContext, container: string, inc: string, doc: TaskDoc, existing: TaskDoc): Promise<boolean> {
  if (doc.nonce !== undefined && existing.nonce === doc.nonce) return true;
  const old = existing.stagedBy;
  if (!isStaged(doc) || old === null || old === undefined || existing.addedBy !== doc.addedBy || old >= doc.stagedBy!) return false;
  const outcomeId = transitionKey(container, doc.addedBy!, old + 1, inc);
  const outcome = await ctx.read('restage', () => ctx.q(ctx.m.transitions.findById(outcomeId).lean<TransitionDoc>()).exec());
  if (outcome?.kind === 'succeeded') return false; // it is part of the container
  // A compare-and-set on `stagedBy`: under the document's gate, as the server may not make it atomic.
  const res = await ctx.writeGated('restage', `tasks:${doc._id}`, (o) =>
    ctx.m.tasks.replaceOne({ _id: doc._id, stagedBy: old }, { ...doc, order: existing.order }, o).exec(),
  );
  if (res.modifiedCount > 0) return true;
  // Nothing replaced: a racing restager won, or our own earlier try (its reply lost) did.
  return (await readTask(ctx, 'restage', doc._id))?.nonce === doc.nonce;
}

/**
 * Changes the static fields of a task (a new `name` renames it, see
 * {@link renameTask}); false when the container or the task does not exist.
 * @throws OperationTimeoutError when a write got no reply in time and retries ran out
 */
export async function updateTaskRecord(ctx: StoreContext, container: string, name: string, patch: Partial<NewTask>): Promise<boolean> {
  const { name: newName, ...rest } = patch;
  const inc = await ctx.incarnation(container);
  if (inc === null) return false;
  if (newName !== undefined && newName !== name) return renameTask(ctx, container, inc, name, newName, rest);
  const _id = taskKey(container, name, inc);
  // Under the task document's gate: 0.0.1 processes editing one task at once must not undo each other's fields.
  const res = await ctx.writeGated('updateTaskRecord', `tasks:${_id}`, (o) => ctx.m.tasks.updateOne({ _id }, { $set: rest }, o).exec());
  return res.matchedCount > 0;
}

/**
 * Re-keys a task and its log under a new name; false when `from` does not exist.
 * A retry after a lost reply accepts the copies its own earlier try made.
 * @throws the duplicate-key error when `to` is taken
 * @throws OperationTimeoutError when an operation got no reply in time and retries ran out
 */
export async function renameTask(ctx: StoreContext, container: string, inc: string, from: string, to: string, rest: Partial<NewTask>): Promise<boolean> {
  const doc = await readTask(ctx, 'renameTask', taskKey(container, from, inc));
  if (!doc) return false;
  const copy: TaskDoc = { ...doc, ...rest, _id: taskKey(container, to, inc), name: to };
  await addToDirectory(ctx, container, inc, [to]);
  await writeTolerant(ctx, 'renameTask', async (o) => void (await ctx.m.tasks.create([copy], ctx.saveOptions(o))), async () => {
    const stored = await readTask(ctx, 'renameTask', copy._id);
    return stored !== null && stored.order === doc.order && stored.createdAt.getTime() === doc.createdAt.getTime();
  });
  const all = await ctx.read('renameTask', () => ctx.q(ctx.m.transitions.find({ container, task: from }).lean<TransitionDoc[]>()).exec(), 6);
  const log = all.filter((t) => (t.incarnation ?? '') === inc);
  if (log.length > 0) {
    const copies = log.map((t) => ({ ...t, _id: transitionKey(container, to, t.token, inc), task: to }));
    // The copies are deterministic (same `_id`, same content): a retry meeting them as duplicates is done.
    await writeTolerant(ctx, 'renameTask', async (o) => void (await ctx.m.transitions.collection.insertMany(asRaw(copies), { ordered: false, ...o })), async () => true);
  }
  await deleteTask(ctx, container, from);
  return true;
}

/** `ctx.write(fn)`, where a duplicate key on a retried try is accepted when `ours()` says the earlier try made it. */
async function writeTolerant(
  ctx: StoreContext,
  operation: string,
  fn: Parameters<StoreContext['write']>[1],
  ours: () => Promise<boolean>,
): Promise<void> {
  let tries = 0;
  await ctx.write(operation, async (o) => {
    tries++;
    try {
      await fn(o);
    } catch (error) {
      if (!(tries > 1 && isDuplicateKeyError(error) && (await ours()))) throw error;
    }
  });
}

/**
 * Deletes one task and its history; false when it did not exist. A retry
 * after a lost reply that finds the task gone counts the delete as its own
 * when the task existed as this call began.
 * @throws OperationTimeoutError when an operation got no reply in time and retries ran out
 */
export async function deleteTask(ctx: StoreContext, container: string, name: string): Promise<boolean> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return false;
  const id = taskKey(container, name, inc);
  const existed = (await readTask(ctx, 'deleteTask', id)) !== null;
  // Only this incarnation's log: a delete that is slow never reaches a container created again meanwhile.
  await ctx.write('deleteTask', (o) => ctx.m.transitions.deleteMany({ container, incarnation: ofIncarnation(inc), task: name }, o).exec());
  if (!existed) return false;
  let tries = 0;
  const res = await ctx.write('deleteTask', (o) => {
    tries++;
    return ctx.m.tasks.deleteOne({ _id: id }, o).exec();
  });
  return res.deletedCount > 0 || tries > 1;
}
