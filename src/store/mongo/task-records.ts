import type { NewTask } from '../types.js';
import type { StoreContext } from './context.js';
import { isDuplicateKeyError, taskKey, transitionKey } from './keys.js';
import type { TaskDoc, TransitionDoc } from './models.js';

/** Writes of task records: adding (idempotent by name), restaging, editing, renaming and deleting tasks. */

export async function addTasks(ctx: StoreContext, container: string, tasks: NewTask[]): Promise<string[]> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return [];
  const now = new Date();
  const base = now.getTime() * 1000;
  const added: string[] = [];
  // One insert per task: a duplicate name must not stop the others, and
  // FerretDB reports unordered bulk errors less precisely than MongoDB.
  for (const [i, t] of tasks.entries()) {
    const doc: TaskDoc = {
      _id: taskKey(container, t.name, inc),
      container,
      ...(inc ? { incarnation: inc } : {}),
      name: t.name,
      dependsOn: [...t.dependsOn],
      handler: t.handler,
      input: t.input ?? null,
      options: t.options,
      dynamic: t.dynamic,
      addedBy: t.addedBy,
      stagedBy: t.stagedBy ?? null,
      order: base + i,
      createdAt: now,
    };
    try {
      await ctx.m.tasks.create(doc);
      added.push(t.name);
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      if (await restage(ctx, container, inc, doc)) added.push(t.name);
    }
  }
  return added;
}

/**
 * A staged task whose name is taken by a task staged earlier by an attempt
 * of the same adder that never succeeded (it died or was fenced off) takes
 * its place; true when it did.
 */
export async function restage(ctx: StoreContext, container: string, inc: string, doc: TaskDoc): Promise<boolean> {
  if (doc.stagedBy === null || doc.stagedBy === undefined || doc.addedBy === null) return false;
  const existing = await ctx.m.tasks.findById(doc._id).lean<TaskDoc>();
  const old = existing?.stagedBy;
  if (!existing || old === null || old === undefined || existing.addedBy !== doc.addedBy || old >= doc.stagedBy) return false;
  const outcome = await ctx.m.transitions.findById(transitionKey(container, doc.addedBy, old + 1, inc)).lean<TransitionDoc>();
  if (outcome?.kind === 'succeeded') return false; // it is part of the container
  const res = await ctx.m.tasks.replaceOne({ _id: doc._id, stagedBy: old }, { ...doc, order: existing.order });
  return res.modifiedCount > 0;
}

export async function updateTaskRecord(ctx: StoreContext, container: string, name: string, patch: Partial<NewTask>): Promise<boolean> {
  const { name: newName, ...rest } = patch;
  const inc = await ctx.incarnation(container);
  if (inc === null) return false;
  if (newName !== undefined && newName !== name) return renameTask(ctx, container, inc, name, newName, rest);
  const res = await ctx.m.tasks.updateOne({ _id: taskKey(container, name, inc) }, { $set: rest });
  return res.matchedCount > 0;
}

/** Re-keys a task and its log under a new name; the new name must be free. */
export async function renameTask(ctx: StoreContext, container: string, inc: string, from: string, to: string, rest: Partial<NewTask>): Promise<boolean> {
  const doc = await ctx.m.tasks.findById(taskKey(container, from, inc)).lean<TaskDoc>();
  if (!doc) return false;
  await ctx.m.tasks.create({ ...doc, ...rest, _id: taskKey(container, to, inc), name: to });
  const log = (await ctx.m.transitions.find({ container, task: from }).lean<TransitionDoc[]>()).filter(
    (t) => (t.incarnation ?? '') === inc,
  );
  if (log.length > 0) {
    await ctx.m.transitions.insertMany(
      log.map((t) => ({ ...t, _id: transitionKey(container, to, t.token, inc), task: to })),
    );
  }
  await deleteTask(ctx, container, from);
  return true;
}

export async function deleteTask(ctx: StoreContext, container: string, name: string): Promise<boolean> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return false;
  await ctx.m.transitions.deleteMany({ container, task: name });
  const res = await ctx.m.tasks.deleteOne({ _id: taskKey(container, name, inc) });
  return res.deletedCount > 0;
}

