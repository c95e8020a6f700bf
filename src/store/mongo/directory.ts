import { randomBytes } from 'node:crypto';
import type { StoreContext } from './context.js';
import { directoryKey, isDuplicateKeyError } from './keys.js';
import type { DirectoryDoc } from './models.js';
import { firstFreeNumber } from './sequence.js';

/**
 * A container's task directory: the names of its tasks in pages read by
 * exact `_id`, so a whole-container read needs no filter on `container`
 * (FerretDB v1 scans the whole collection for any filter but an exact `_id`).
 *
 * Pages are numbered 0, 1, 2… without gaps: a writer inserts at the first
 * free number it finds and moves on by one on a duplicate key, and nothing
 * deletes a page but the purge of its container. A page is written before
 * the task documents it names, so every task document is listed (a listed
 * name may have no document: its insert failed, or it was deleted).
 */


/**
 * Lists `names` in the directory of `container` (incarnation `inc`), in one
 * new page. Transient errors are retried with the same page; a duplicate key
 * is our own page when it carries our nonce (a retried insert whose reply
 * was lost), else another writer's, and the next number is tried.
 * @throws OperationTimeoutError when the server gave no reply in time and retries ran out
 */
export async function addToDirectory(ctx: StoreContext, container: string, inc: string, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const hintKey = JSON.stringify([container, inc]);
  // Where our last read or write of this directory ended: a duplicate key from there moves on by one.
  const known = ctx.directoryEnds.get(hintKey);
  let seq = known ?? (await firstFreePage(ctx, container, inc, 0));
  const nonce = randomBytes(8).toString('hex');
  for (;;) {
    const doc: DirectoryDoc = { _id: directoryKey(container, inc, seq), container, incarnation: inc, seq, names: [...names], nonce };
    let tries = 0;
    const ours = await ctx.write('addToDirectory', async (o) => {
      tries++;
      try {
        await ctx.m.directory.collection.insertOne(doc as never, { ...o });
        return true;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        if (tries === 1) return false;
        return (await readPage(ctx, doc._id))?.nonce === nonce;
      }
    });
    if (ours) {
      ctx.directoryEnds.set(hintKey, seq + 1);
      return;
    }
    seq++;
  }
}

/** One page by its exact `_id`, or null. */
function readPage(ctx: StoreContext, id: string): Promise<DirectoryDoc | null> {
  return ctx.read('readDirectory', () => ctx.q(ctx.m.directory.findById(id).lean<DirectoryDoc>()).exec());
}

/** The first free page number at or after `from` (pages have no gaps; see {@link firstFreeNumber}). */
function firstFreePage(ctx: StoreContext, container: string, inc: string, from: number): Promise<number> {
  return firstFreeNumber(async (seq) => (await readPage(ctx, directoryKey(container, inc, seq))) !== null, from);
}

/**
 * The pages of the directory from number `from` on, probing `window`
 * numbers at a time (most containers have one page: two reads find its end)
 * until a free one. Returns them in order, and the first free number (where
 * a later read picks up).
 */
export async function readDirectory(
  ctx: StoreContext,
  container: string,
  inc: string,
  from = 0,
  width = 2,
): Promise<{ pages: DirectoryDoc[]; end: number }> {
  const pages: DirectoryDoc[] = [];
  for (let seq = from; ; seq += width) {
    const window = await Promise.all(Array.from({ length: width }, (_, i) => readPage(ctx, directoryKey(container, inc, seq + i))));
    for (const [i, page] of window.entries()) {
      if (!page) {
        ctx.directoryEnds.set(JSON.stringify([container, inc]), seq + i);
        return { pages, end: seq + i };
      }
      pages.push(page);
    }
  }
}
