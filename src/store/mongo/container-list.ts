import type { ContainerPage, ContainerPageQuery } from '../types.js';
import { toContainerRecord, type StoreContext } from './context.js';
import type { ContainerDoc } from './models.js';

/** Most containers one page may hold. */
export const MAX_PAGE_SIZE = 200;

/**
 * One page of containers, newest first (`createdAt`, then name, descending),
 * read with one bounded query: a keyset cursor (never `skip`), a `limit`, a
 * projection without the definition, and the store's `maxTimeMS`. On MongoDB
 * the index `{ status, createdAt, _id }` (or `{ createdAt, _id }`) serves it
 * without an in-memory sort; FerretDB v1 scans the (small) container
 * documents. `namePrefix` is a range on `_id`, never a regular expression.
 */
export async function listContainerPage(ctx: StoreContext, query: ContainerPageQuery): Promise<ContainerPage> {
  const limit = Math.min(Math.max(1, Math.floor(query.limit)), MAX_PAGE_SIZE);
  const and: Array<Record<string, unknown>> = [{ deletedAt: null }];
  if (query.status) and.push({ status: query.status });
  if (query.namePrefix) and.push({ _id: { $gte: query.namePrefix, $lt: `${query.namePrefix}\uffff` } });
  if (query.after) {
    const { createdAt, name } = query.after;
    and.push({ $or: [{ createdAt: { $lt: createdAt } }, { createdAt, _id: { $lt: name } }] });
  }
  const docs = await ctx.read(
    'listContainerPage',
    () =>
      ctx
        .q(
          ctx.m.containers
            .find({ $and: and })
            .select({ definition: 0 })
            .sort({ createdAt: -1, _id: -1 })
            .limit(limit + 1)
            .lean<ContainerDoc[]>(),
        )
        .exec(),
  );
  const containers = docs.slice(0, limit).map((doc) => toContainerRecord({ ...doc, definition: null }));
  const last = containers[containers.length - 1];
  return { containers, next: docs.length > limit && last ? { createdAt: last.createdAt, name: last.name } : null };
}
