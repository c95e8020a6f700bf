import type { Transition } from '../transition.js';
import type { ContainerHead } from '../types.js';
import { toContainerRecord, type StoreContext } from './context.js';
import { taskKey, transitionKey } from './keys.js';
import type { ContainerDoc, TaskDoc, TransitionDoc } from './models.js';

/**
 * Reads of single positions of task logs, each by exact `_id` (the only
 * lookup every supported server indexes): what an incremental scheduler
 * needs instead of re-reading the whole container.
 */

/**
 * The container document as stored (status not derived), with its revision,
 * without its declared graph; null when gone or tombstoned. The graph is
 * most of the document of a large container (about 140 bytes per task), and
 * a runner reads the head every `pollMs`.
 */
export async function readContainerHead(ctx: StoreContext, container: string): Promise<ContainerHead | null> {
  const doc = await ctx.read('readContainerHead', () => ctx.q(ctx.m.containers.findById(container, { definition: 0 }).lean<ContainerDoc>()).exec());
  if (!doc || doc.deletedAt) return null;
  // Where this store's writes go, unless it already wrote or read the container (what `ctx.incarnation` would read).
  if (!ctx.pins.has(container)) ctx.pins.set(container, doc.incarnation ?? '');
  const { definition, ...record } = toContainerRecord(doc);
  void definition;
  return { record, revision: doc.revision ?? 0, applied: doc.applied ?? null };
}

/**
 * The entries of one task's log from position `fromToken` on, probing one
 * position at a time until a free one: a handful of reads when a task moved
 * by a step or two, which is what a scheduler that already holds its state needs.
 */
export async function readLog(
  ctx: StoreContext,
  container: string,
  task: string,
  fromToken: number,
  limit = Infinity,
): Promise<Transition[]> {
  const inc = (await ctx.incarnation(container)) ?? '';
  const out: Transition[] = [];
  for (let token = Math.max(1, fromToken); out.length < limit; token++) {
    const id = transitionKey(container, task, token, inc);
    const doc = await ctx.read('readLog', () => ctx.q(ctx.m.transitions.findById(id).lean<TransitionDoc>()).exec());
    if (!doc) return out;
    const { _id, ...entry } = doc;
    void _id;
    out.push(entry);
  }
  return out;
}

/** The outputs recorded by the given success entries (task and its `succeeded` position), by task name. */
export async function readOutputs(
  ctx: StoreContext,
  container: string,
  refs: ReadonlyArray<{ task: string; token: number }>,
): Promise<Map<string, unknown>> {
  const inc = (await ctx.incarnation(container)) ?? '';
  const outputs = new Map<string, unknown>();
  await Promise.all(
    refs.map(async ({ task, token }) => {
      const id = transitionKey(container, task, token, inc);
      const doc = await ctx.read('readOutputs', () =>
        ctx.q(ctx.m.transitions.findById(id, { kind: 1, output: 1 }).lean<Pick<TransitionDoc, 'kind' | 'output'>>()).exec(),
      );
      if (doc?.kind === 'succeeded') outputs.set(task, doc.output ?? null);
    }),
  );
  return outputs;
}

/** The inputs of the given tasks, by task name (one read by `_id` each); tasks not found are left out. */
export async function readInputs(ctx: StoreContext, container: string, tasks: readonly string[]): Promise<Map<string, unknown>> {
  const inc = (await ctx.incarnation(container)) ?? '';
  const inputs = new Map<string, unknown>();
  await Promise.all(
    tasks.map(async (task) => {
      const id = taskKey(container, task, inc);
      const doc = await ctx.read('readInputs', () => ctx.q(ctx.m.tasks.findById(id, { input: 1 }).lean<Pick<TaskDoc, 'input'>>()).exec());
      if (doc) inputs.set(task, doc.input ?? null);
    }),
  );
  return inputs;
}
