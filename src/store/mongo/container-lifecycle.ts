import { randomBytes } from 'node:crypto';
import type { ContainerRecord, NewContainer } from '../types.js';
import { toContainerRecord, type StoreContext } from './context.js';
import { dropGraph, writeGraph } from './graph-pages.js';
import { isDuplicateKeyError, ofIncarnation } from './keys.js';
import { appendToListing } from './listing.js';
import type { ContainerDoc } from './models.js';

/**
 * A container's birth and death: the create that racing callers make exactly
 * once, and the delete that tombstones, then purges one incarnation.
 */

/**
 * Creates the container, or returns the one that exists (`created: false`).
 * The insert runs under the operation deadline with transient errors
 * retried; a retry after a lost reply recognises its own container by the
 * random incarnation it generated (`created: true`). A tombstone left by a
 * delete that died half-way is purged first. A new container's entry in
 * the container listing is appended before its document (see listing.ts).
 * @throws OperationTimeoutError when the server gave no reply in time and retries ran out
 */
export async function createContainer(ctx: StoreContext, input: NewContainer): Promise<{ record: ContainerRecord; created: boolean }> {
  for (let round = 1; ; round++) {
    // Read first: resuming an existing container (the common call) writes
    // nothing. Its declared graph is not read (megabytes for a large
    // container): a caller that compares graphs reads it with `loadSnapshot`.
    const existing = await ctx.readContainerDoc('createContainer', input.name, false);
    if (existing && !existing.deletedAt) {
      ctx.pins.set(input.name, existing.incarnation ?? '');
      return { record: toContainerRecord(existing), created: false };
    }
    // A delete that died half-way left a tombstone: finish its purge, then create.
    if (existing && round < 3) {
      await purge(ctx, input.name, existing.incarnation ?? '');
      continue;
    }
    const now = new Date();
    const incarnation = randomBytes(8).toString('hex');
    // The declared graph's pages before the document that points at them
    // (see graph-pages.ts): a cut in between leaves pages no container
    // names, and the next create writes its own under a new incarnation.
    const graph = input.definition ? await writeGraph(ctx, input.name, incarnation, input.definition) : null;
    // The listing entry first: every container document has one (a cut in
    // between leaves a dead entry, which the list skips).
    const listing = await appendToListing(ctx, input.name, incarnation, now);
    const doc: ContainerDoc = {
      _id: input.name,
      status: 'running',
      failFast: input.failFast,
      definition: null,
      graph,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      cancelRequestedAt: null,
      incarnation,
      deletedAt: null,
      directory: true,
      listing,
    };
    try {
      await ctx.writeContainer('createContainer', input.name, (o) => ctx.m.containers.create([doc], ctx.saveOptions(o)));
      ctx.pins.set(input.name, doc.incarnation!);
      ctx.directoryEnds.set(JSON.stringify([input.name, doc.incarnation]), 0);
      return { record: { ...toContainerRecord(doc), definition: input.definition }, created: true };
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      const raw = await ctx.readContainerDoc('createContainer', input.name, false);
      if (raw && !raw.deletedAt && raw.incarnation === doc.incarnation) {
        // Our own insert, whose reply was lost: the retry met it.
        ctx.pins.set(input.name, doc.incarnation!);
        return { record: { ...toContainerRecord(raw), definition: input.definition }, created: true };
      }
      // Another create won: the pages written for ours are no one's.
      if (graph) await dropGraph(ctx, input.name, incarnation, graph);
      // A delete that died half-way left a tombstone: finish its purge, then create.
      if (raw?.deletedAt && round < 3) {
        await purge(ctx, input.name, raw.incarnation ?? '');
        continue;
      }
      // An existing container: its stored fields, without reading its tasks
      // (the status is the stored hint; read loadSnapshot for the derived one).
      if (!raw || raw.deletedAt) throw error;
      ctx.pins.set(input.name, raw.incarnation ?? '');
      return { record: toContainerRecord(raw), created: false };
    }
  }
}

/**
 * Tombstones the container, then purges what is stored under its
 * incarnation; false when it did not exist. Each step runs under the
 * operation deadline with transient errors retried. A retry after a lost
 * reply that finds a tombstone with its own `deletedAt` goes on as the
 * deleter. A tombstone left by a delete that died half-way is purged here
 * too (the call still returns false: the container was already gone).
 * @throws OperationTimeoutError when the server gave no reply in time and retries ran out
 */
export async function deleteContainer(ctx: StoreContext, name: string): Promise<boolean> {
  const before = await ctx.readContainerDoc('deleteContainer', name, false);
  ctx.pins.delete(name);
  if (!before) return false;
  const inc = before.incarnation ?? '';
  if (before.deletedAt) {
    await purge(ctx, name, inc);
    return false;
  }
  // The tombstone first: from here on the container reads as gone, and a
  // create under the same name makes a new incarnation. It names the
  // incarnation read, so a container created again meanwhile is never tombstoned.
  const deletedAt = new Date();
  let tries = 0;
  const res = await ctx.writeContainer('deleteContainer', name, (o) => {
    tries++;
    return ctx.m.containers.updateOne({ _id: name, deletedAt: null, incarnation: ofIncarnation(inc) }, { $set: { deletedAt } }, o).exec();
  });
  if (res.matchedCount === 0) {
    const raw = await ctx.readContainerDoc('deleteContainer', name, false);
    const ours = tries > 1 && raw?.deletedAt?.getTime() === deletedAt.getTime();
    if (!ours) {
      // Deleted by another call meanwhile (help its purge), or deleted and created again: not ours to delete.
      if (raw?.deletedAt) await purge(ctx, name, raw.incarnation ?? '');
      return false;
    }
  }
  await purge(ctx, name, inc);
  return true;
}

/**
 * Removes a tombstoned container with everything stored under its
 * incarnation `inc`; each step idempotent. Documents of any other
 * incarnation are left alone: a purge that is slow, or held up, never
 * reaches a container created again under the same name meanwhile.
 */
export async function purge(ctx: StoreContext, name: string, inc: string): Promise<void> {
  const mine = { container: name, incarnation: ofIncarnation(inc) };
  // Children first: a crash half-way leaves a tombstone that a delete or create finishes.
  await ctx.write('purge', (o) => ctx.m.transitions.deleteMany(mine, o).exec());
  await ctx.write('purge', (o) => ctx.m.tasks.deleteMany(mine, o).exec());
  await ctx.write('purge', (o) => ctx.m.directory.deleteMany(mine, o).exec());
  await ctx.write('purge', (o) => ctx.m.graph.deleteMany(mine, o).exec());
  await ctx.write('purge', (o) => ctx.m.slots.deleteMany({ container: name, incarnation: inc }, o).exec());
  await ctx.writeContainer('purge', name, (o) => ctx.m.containers.deleteOne({ _id: name, deletedAt: { $ne: null }, incarnation: ofIncarnation(inc) }, o).exec());
}
