import { randomBytes } from 'node:crypto';
import type { HeldSlots, SlotAcquisition, SlotHolder, SlotHolding, SlotId } from '../types.js';
import type { StoreContext } from './context.js';
import type { SlotDoc } from './models.js';

/**
 * Slots of limits shared by runners. Each slot is one document, unique by
 * (container, incarnation, scope, index) under a unique index, so taking it
 * is an insert that at most one writer wins (a duplicate key means taken:
 * no findAndModify, which FerretDB v1 does not run atomically). Its `_id`
 * also carries the acquisition's nonce, and a release or an eviction deletes
 * by that exact `_id`: it can never free an acquisition other than the one
 * it means. A filter on the nonce beside a slot-wide `_id` would not do:
 * FerretDB v1 runs a filtered delete as a read, then a delete by `_id` in
 * another transaction, so a release racing an eviction of the same
 * acquisition deleted the next holder's slot inserted in between
 * (FerretDB v1.24 internal/handler/msg_delete.go, execDelete).
 */

/** `_id` of a slot document: the slot and the acquisition holding it. */
export const slotKey = (container: string, incarnation: string, id: SlotId, nonce: string): string =>
  JSON.stringify(['slot', container, incarnation, id.scope, id.index, nonce]);

export async function readSlots(ctx: StoreContext, container: string, ids: readonly SlotId[]): Promise<SlotHolding[]> {
  if (ids.length === 0) return [];
  const inc = (await ctx.incarnation(container)) ?? '';
  const wanted = new Set(ids.map((id) => JSON.stringify([id.scope, id.index])));
  const scopes = [...new Set(ids.map((id) => id.scope))];
  // Slot documents exist only while held or, for rate tokens, until swept: a
  // handful (MongoDB reads them by the unique index).
  const filter = { container, incarnation: inc, scope: { $in: scopes } };
  const docs = await ctx.read('readSlots', () => ctx.q(ctx.m.slots.find(filter).lean<SlotDoc[]>()).exec());
  return docs
    .filter((d) => wanted.has(JSON.stringify([d.scope, d.index])))
    .map((d) => ({
      scope: d.scope,
      index: d.index,
      task: d.task,
      token: d.token,
      runnerId: d.runnerId,
      nonce: d.nonce,
      ...(d.expiresAt ? { expiresAt: d.expiresAt } : {}),
      ...(d._id === slotKey(container, inc, d, d.nonce) ? {} : { legacy: true as const }),
    }));
}

export async function acquireSlots(ctx: StoreContext, container: string, ids: readonly SlotId[], holder: SlotHolder): Promise<SlotAcquisition> {
  const inc = (await ctx.incarnation(container)) ?? '';
  const nonce = randomBytes(8).toString('hex');
  const at = ctx.now();
  const docs: SlotDoc[] = ids.map((id) => ({ _id: slotKey(container, inc, id, nonce), container, incarnation: inc, ...id, ...holder, nonce, at }));
  const held: HeldSlots = { container, ids: [...ids], nonce };
  // Grouped with the acquisitions of the same turn (see SlotBatcher). A
  // transient error repeats the same documents: a slot found holding our own
  // nonce is one an earlier try inserted, and is ours.
  const duplicates = await ctx.slotWrites.insert(docs);
  if (duplicates.length === 0) return { held };
  const there = await readSlots(ctx, container, duplicates.map((i) => ids[i]!));
  const taken = there.filter((h) => h.nonce !== nonce);
  if (taken.length === 0 && there.length === duplicates.length) return { held };
  // All or nothing: give back what this call took (nothing to delete when every slot was refused).
  // (Also those an earlier try of this call inserted: refused now, but holding our nonce.)
  const theirs = new Set(taken.map((h) => JSON.stringify([h.scope, h.index])));
  const landed = ids.filter((id) => !theirs.has(JSON.stringify([id.scope, id.index])));
  if (landed.length > 0) await releaseSlots(ctx, { ...held, ids: landed });
  return { taken };
}

export async function releaseSlots(ctx: StoreContext, held: HeldSlots): Promise<void> {
  const inc = (await ctx.incarnation(held.container)) ?? '';
  const keys = held.ids.map((id) => slotKey(held.container, inc, id, held.nonce));
  await ctx.slotWrites.delete(keys);
}

export async function evictSlot(ctx: StoreContext, container: string, holding: SlotHolding): Promise<boolean> {
  const inc = (await ctx.incarnation(container)) ?? '';
  if (!holding.legacy) {
    const res = await ctx.write('evictSlot', (o) => ctx.m.slots.deleteOne({ _id: slotKey(container, inc, holding, holding.nonce) }, o).exec());
    return res.deletedCount > 0;
  }
  // A slot taken by a version before the nonce was in the `_id` (only such versions write this `_id`).
  const legacy = JSON.stringify(['slot', container, inc, holding.scope, holding.index]);
  const old = await ctx.write('evictSlot', (o) => ctx.m.slots.deleteOne({ _id: legacy, nonce: holding.nonce }, o).exec());
  return old.deletedCount > 0;
}

/**
 * Moves the `expiresAt` of slots held by one acquisition (one update by exact
 * `_id`s, so it never touches another acquisition's slot); false when none of
 * them is held any more (released, evicted or swept).
 */
export async function renewSlots(ctx: StoreContext, held: HeldSlots, expiresAt: Date): Promise<boolean> {
  const inc = (await ctx.incarnation(held.container)) ?? '';
  const keys = held.ids.map((id) => slotKey(held.container, inc, id, held.nonce));
  // One key is an exact `_id`, which FerretDB v1 serves without a scan.
  const filter = keys.length === 1 ? { _id: keys[0]! } : { _id: { $in: keys } };
  const res = await ctx.write('renewSlots', (o) => ctx.m.slots.updateMany(filter, { $set: { expiresAt } }, o).exec());
  return res.matchedCount > 0;
}

/**
 * Deletes the rate-limit tokens of a container whose window ended before
 * `before` (those of runners that died; live runners delete their own).
 * FerretDB v1 runs it as a read, then deletes by `_id`: each `_id` names one
 * acquisition, so it deletes only the expired tokens it read.
 */
export async function sweepSlots(ctx: StoreContext, container: string, before: Date): Promise<number> {
  const inc = (await ctx.incarnation(container)) ?? '';
  const res = await ctx.write('sweepSlots', (o) => ctx.m.slots.deleteMany({ container, incarnation: inc, expiresAt: { $lt: before } }, o).exec());
  return res.deletedCount;
}
