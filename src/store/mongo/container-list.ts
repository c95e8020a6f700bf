import pLimit from 'p-limit';
import type { ContainerPage, ContainerPageCursor, ContainerPageQuery, ContainerRecord, ContainerStatus } from '../types.js';
import { toContainerRecord, type StoreContext } from './context.js';
import { ListingReader, listingEnd } from './listing.js';
import type { ContainerDoc, ListingDoc } from './models.js';

/** Most containers one page may hold. */
export const MAX_PAGE_SIZE = 200;
/** Most listing entries one page may examine (`examine`). */
export const MAX_EXAMINE = 5000;
/** Point reads in flight at once for one page. */
const PARALLEL_READS = 32;
/** `_id` of the marker that says no container lacks a listing entry (see {@link hasUnlisted}). */
const ALL_LISTED = JSON.stringify(['all-listed']);

/**
 * One page of containers, newest first, read by exact `_id`s only: the
 * listing's entries from the end down (see listing.ts), each with its
 * container document (projected without the definition). Without filters a
 * page costs about 2 × `limit` point reads whatever the number of
 * containers. Entries are examined newest-first, at most `examine` of them
 * per page (dead entries and, with a status or name filter, the containers
 * that do not match are examined too): a page may then hold
 * fewer than `limit` containers and still have a `next` cursor that goes on
 * where it stopped. A name that is a whole container name is found first,
 * by its `_id`.
 *
 * Containers made before the listing existed (no `listing` field) come after
 * the listing's first entry, read with the indexed keyset query of earlier
 * versions (a scan on FerretDB v1), until a read finds none and leaves a marker.
 * @throws OperationTimeoutError when a read got no reply in time and retries ran out
 */
export async function listContainerPage(ctx: StoreContext, query: ContainerPageQuery): Promise<ContainerPage> {
  const limit = clamp(query.limit, 1, MAX_PAGE_SIZE);
  const filtered = Boolean(query.status || query.namePrefix);
  const budget = clamp(query.examine ?? limit * 8, limit, MAX_EXAMINE);
  const after = query.after ?? null;
  // A final status has a list of its own (in the order containers reached it); those
  // that reached it before the lists existed come after, from the listing walk.
  const finished = query.status && query.status !== 'running' ? query.status : null;
  if (after && 'legacy' in after) return legacyPage(ctx, query, limit, after.legacy, finished !== null);
  const page: Page = { containers: [], seen: new Set(), examined: 0 };
  const wanted = (doc: ContainerDoc | null): doc is ContainerDoc => doc !== null && !doc.deletedAt && (!query.status || doc.status === query.status);
  if (query.namePrefix && !after) {
    const doc = await readProjected(ctx, query.namePrefix);
    if (wanted(doc)) {
      page.containers.push(toContainerRecord({ ...doc, definition: null }));
      page.seen.add(doc._id);
    }
  }
  const limiter = pLimit(PARALLEL_READS);
  const prefixed = (name: string) => !query.namePrefix || name.startsWith(query.namePrefix);
  if (finished && (!after || 'finished' in after)) {
    const end = await listingEnd(ctx, finished);
    const from = after && 'finished' in after ? Math.min(after.finished, end) : end;
    const top = await walk(ctx, page, new ListingReader(ctx, end, limiter, finished), from, limit, budget, filtered, async (entry, seq) => {
      if (!prefixed(entry.container)) return null;
      const doc = await limiter(() => readProjected(ctx, entry.container));
      // An entry counts while the container still has that status from that finish.
      return wanted(doc) && doc.statusEntry === seq && (doc.incarnation ?? '') === entry.incarnation ? doc : null;
    });
    if (top.stoppedAt !== null) return done(page, { finished: top.stoppedAt });
    if (!(await hasUnrecorded(ctx))) return done(page, null);
    return done(page, { seq: await listingEnd(ctx) });
  }
  const end = await listingEnd(ctx);
  const from = after && 'seq' in after ? Math.min(after.seq, end) : end;
  const top = await walk(ctx, page, new ListingReader(ctx, end, limiter), from, limit, budget, filtered, async (entry, seq) => {
    if (!prefixed(entry.container)) return null;
    const doc = await limiter(() => readProjected(ctx, entry.container));
    // A dead entry (its container was deleted, made again, or never made) is not the container's;
    // one that reached a final status since its list existed was shown from that list.
    return wanted(doc) && doc.listing === seq && !(finished && typeof doc.statusEntry === 'number') ? doc : null;
  });
  if (top.stoppedAt !== null) return done(page, { seq: top.stoppedAt });
  const rest = await unlistedCursor(ctx);
  if (!rest || page.containers.length >= limit) return done(page, rest);
  // The rest of the page from the unlisted containers (all of it in a database of an older version).
  const legacy = await legacyPage(ctx, query, limit - page.containers.length, null, finished !== null);
  for (const c of legacy.containers) if (!page.seen.has(c.name)) page.containers.push(c);
  page.examined += legacy.examined;
  return done(page, legacy.next);
}

interface Page {
  containers: ContainerRecord[];
  seen: Set<string>;
  examined: number;
}

function done(page: Page, next: ContainerPageCursor | null): ContainerPage {
  return { containers: page.containers, next, examined: page.examined };
}

/**
 * Examines entries `from−1`, `from−2`… of one list into `page` until it holds
 * `limit` containers, `budget` entries were examined, or entry 0 was.
 * `stoppedAt`: the entry number to go on below, or null when entry 0 was examined.
 */
async function walk(
  ctx: StoreContext,
  page: Page,
  entries: ListingReader,
  from: number,
  limit: number,
  budget: number,
  filtered: boolean,
  accept: (entry: Omit<ListingDoc, '_id' | 'nonce'>, seq: number) => Promise<ContainerDoc | null>,
): Promise<{ stoppedAt: number | null }> {
  let top = from - 1;
  while (top >= 0 && page.containers.length < limit && page.examined < budget) {
    // Unfiltered, nearly every entry is a row: read as many as rows are missing.
    const want = filtered ? Math.max(limit - page.containers.length, 16) : limit - page.containers.length;
    const width = Math.min(top + 1, want, budget - page.examined);
    const seqs = Array.from({ length: width }, (_, i) => top - i);
    const docs = await Promise.all(
      seqs.map(async (seq) => {
        const entry = await entries.entry(seq);
        return entry ? accept(entry, seq) : null;
      }),
    );
    for (const [i, doc] of docs.entries()) {
      page.examined++;
      if (!doc || page.seen.has(doc._id)) continue;
      page.seen.add(doc._id);
      page.containers.push(toContainerRecord({ ...doc, definition: null }));
      if (page.containers.length === limit) return { stoppedAt: seqs[i]! > 0 ? seqs[i]! : null };
    }
    top -= width;
  }
  return { stoppedAt: top >= 0 ? top + 1 : null };
}

/** `n` rounded down into `low`..`high`; `low` when it is not a finite number. */
function clamp(n: number, low: number, high: number): number {
  return Number.isFinite(n) ? Math.min(Math.max(low, Math.floor(n)), high) : low;
}

/** A container document without its definition, by its exact `_id`. */
function readProjected(ctx: StoreContext, name: string): Promise<ContainerDoc | null> {
  return ctx.read('listContainerPage', () => ctx.q(ctx.m.containers.findById(name, { definition: 0 }).lean<ContainerDoc>()).exec());
}

/** Where the list goes on past the listing's first entry: the unlisted containers, or nowhere. */
async function unlistedCursor(ctx: StoreContext): Promise<ContainerPageCursor | null> {
  return (await hasUnlisted(ctx)) ? { legacy: null } : null;
}

/**
 * True while some container lacks a listing entry (made by a version before
 * the listing). The first read that finds none (one scan on FerretDB v1)
 * inserts a marker, so later reads cost one point read. Containers made
 * afterwards by such a version are not listed: upgrade every writer.
 */
async function hasUnlisted(ctx: StoreContext): Promise<boolean> {
  const marker = await ctx.read('listContainerPage', () => ctx.q(ctx.m.listing.findById(ALL_LISTED).lean()).exec());
  if (marker) return false;
  const one = await ctx.read(
    'listContainerPage',
    () => ctx.q(ctx.m.containers.findOne({ listing: null, deletedAt: null }, { _id: 1 }).lean(), 6).exec(),
    6,
  );
  if (one) return true;
  // A reader without write rights leaves it to the next one; the marker only saves a scan.
  await ctx.m.listing.collection.insertOne({ _id: ALL_LISTED, at: ctx.now() } as never).catch(() => undefined);
  return false;
}

/** `_id` of the marker that says every container with a final status is in that status's list. */
const ALL_RECORDED = JSON.stringify(['all-recorded']);

/**
 * True while some container has a final status without an entry in that
 * status's list (it finished before the lists existed). As for
 * {@link hasUnlisted}: one scan, then a marker.
 */
async function hasUnrecorded(ctx: StoreContext): Promise<boolean> {
  const marker = await ctx.read('listContainerPage', () => ctx.q(ctx.m.listing.findById(ALL_RECORDED).lean()).exec());
  if (marker) return false;
  const filter = { status: { $in: ['succeeded', 'failed', 'cancelled'] as ContainerStatus[] }, statusEntry: null, deletedAt: null };
  const one = await ctx.read('listContainerPage', () => ctx.q(ctx.m.containers.findOne(filter, { _id: 1 }).lean(), 6).exec(), 6);
  if (one) return true;
  await ctx.m.listing.collection.insertOne({ _id: ALL_RECORDED, at: ctx.now() } as never).catch(() => undefined);
  return false;
}

/**
 * A page of the containers made before the listing existed, newest first
 * (`createdAt`, then name, descending), with the keyset query of earlier
 * versions: served by the indexes `{ status, createdAt, _id }` and
 * `{ createdAt, _id }` on MongoDB, a scan on FerretDB v1. `namePrefix` is a
 * range on `_id`, never a regular expression.
 */
async function legacyPage(
  ctx: StoreContext,
  query: ContainerPageQuery,
  limit: number,
  after: { createdAt: Date; name: string } | null,
  unrecordedOnly: boolean,
): Promise<ContainerPage> {
  const and: Array<Record<string, unknown>> = [{ deletedAt: null }, { listing: null }];
  if (unrecordedOnly) and.push({ statusEntry: null });
  if (query.status) and.push({ status: query.status });
  if (query.namePrefix) and.push({ _id: { $gte: query.namePrefix, $lt: `${query.namePrefix}\uffff` } });
  if (after) and.push({ $or: [{ createdAt: { $lt: after.createdAt } }, { createdAt: after.createdAt, _id: { $lt: after.name } }] });
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
  return {
    containers,
    next: docs.length > limit && last ? { legacy: { createdAt: last.createdAt, name: last.name } } : null,
    examined: docs.length,
  };
}
