import { randomBytes } from 'node:crypto';
import type { StoreContext } from './context.js';
import { isDuplicateKeyError, listingBlockKey, listingKey, statusListBlockKey, statusListKey } from './keys.js';
import type { ListingDoc } from './models.js';
import { firstFreeNumber } from './sequence.js';

/**
 * The container listing: one entry per container created, numbered in
 * creation order (a sequence without gaps, see sequence.ts), so the newest
 * containers are the entries just below the end and every page of the
 * dashboard's list is a batch of exact `_id` reads of known keys, whatever
 * the number of containers (FerretDB v1 scans the collection for any filter
 * but an exact `_id`, and for `$in` or range filters on `_id` too).
 *
 * The entry is written before the container document, which names it
 * (`listing: seq`): every container created since the listing exists has an
 * entry, and a writer that dies in between leaves a dead entry that readers
 * skip (no container document names it). Entries are never deleted.
 *
 * The same kind of sequence, one per final status, lists containers in the
 * order they finished (`finishContainer` appends before it sets the status
 * and `statusEntry`), so the status filter reads matches, not candidates.
 */

/** Which sequence: every container by creation, or those that reached a final status, by finish. */
export type ListName = 'all' | 'succeeded' | 'failed' | 'cancelled';

const keyOf = (list: ListName, seq: number) => (list === 'all' ? listingKey(seq) : statusListKey(list, seq));
const blockKeyOf = (list: ListName, block: number) => (list === 'all' ? listingBlockKey(block) : statusListBlockKey(list, block));

/** An entry by its exact `_id`, or null. */
export function readListingEntry(ctx: StoreContext, seq: number, list: ListName = 'all'): Promise<ListingDoc | null> {
  return ctx.read('readListing', () => ctx.q(ctx.m.listing.findById(keyOf(list, seq)).lean<ListingDoc>()).exec());
}

/**
 * The first free number of the listing (its end), probing from where this
 * store last saw it (two reads when it has not moved far; about
 * 2·log2(entries) reads on the first call of a process).
 * @throws OperationTimeoutError when a read got no reply in time and retries ran out
 */
export async function listingEnd(ctx: StoreContext, list: ListName = 'all'): Promise<number> {
  const end = await firstFreeNumber(async (seq) => (await readListingEntry(ctx, seq, list)) !== null, ctx.listingEnds.get(list) ?? 0);
  ctx.listingEnds.set(list, end);
  return end;
}

/**
 * Appends an entry for `container` (incarnation `inc`) at the first free
 * number and returns that number. A duplicate key moves on by one; a retried
 * insert whose reply was lost recognises its own entry by its nonce.
 * @throws OperationTimeoutError when the server gave no reply in time and retries ran out
 */
export async function appendToListing(ctx: StoreContext, container: string, inc: string, createdAt: Date, list: ListName = 'all'): Promise<number> {
  let seq = await listingEnd(ctx, list);
  const nonce = randomBytes(8).toString('hex');
  for (;;) {
    const doc: ListingDoc = { _id: keyOf(list, seq), seq, container, incarnation: inc, createdAt, nonce };
    let tries = 0;
    const ours = await ctx.write('appendToListing', async (o) => {
      tries++;
      try {
        await ctx.m.listing.collection.insertOne(doc as never, { ...o });
        return true;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        if (tries === 1) return false;
        return (await readListingEntry(ctx, seq, list))?.nonce === nonce;
      }
    });
    if (ours) {
      ctx.listingEnds.set(list, Math.max(ctx.listingEnds.get(list) ?? 0, seq + 1));
      return seq;
    }
    seq++;
  }
}

/** Entries per block (see {@link ListingReader}). */
export const BLOCK_SIZE = 32;

/** A block: a copy of entries `block·BLOCK_SIZE` … `+BLOCK_SIZE−1`, written once all exist. */
interface BlockDoc {
  _id: string;
  entries: Array<Omit<ListingDoc, '_id' | 'nonce'>>;
}

/**
 * Reads entries of the listing for one page. Entries never change, so a
 * run of {@link BLOCK_SIZE} of them below the end is copied into one block
 * document (by the first reader that read them all; a duplicate key means
 * another reader wrote the same copy) and later read as one point read
 * instead of 32. The entries near the end, in no full block yet, are read
 * one by one.
 */
export class ListingReader {
  private readonly blocks = new Map<number, Promise<Map<number, Omit<ListingDoc, '_id' | 'nonce'>> | null>>();

  /** `end`: the listing's end as read for this page. */
  constructor(
    private readonly ctx: StoreContext,
    private readonly end: number,
    private readonly read: <T>(fn: () => Promise<T>) => Promise<T>,
    private readonly list: ListName = 'all',
  ) {}

  /** Entry `seq`, or null when there is none. */
  async entry(seq: number): Promise<Omit<ListingDoc, '_id' | 'nonce'> | null> {
    const block = Math.floor(seq / BLOCK_SIZE);
    if ((block + 1) * BLOCK_SIZE <= this.end) {
      if (!this.blocks.has(block)) this.blocks.set(block, this.readBlock(block));
      const entries = await this.blocks.get(block)!;
      if (entries) return entries.get(seq) ?? null;
    }
    return this.read(() => readListingEntry(this.ctx, seq, this.list));
  }

  /** A full block's entries by number, from its copy, else read one by one and copied; null when one is missing. */
  private async readBlock(block: number): Promise<Map<number, Omit<ListingDoc, '_id' | 'nonce'>> | null> {
    const id = blockKeyOf(this.list, block);
    const copy = await this.read(() => this.ctx.read('readListing', () => this.ctx.q(this.ctx.m.listing.findById(id).lean<BlockDoc>()).exec()));
    if (copy?.entries) return new Map(copy.entries.map((e) => [e.seq, e]));
    const seqs = Array.from({ length: BLOCK_SIZE }, (_, i) => block * BLOCK_SIZE + i);
    const docs = await Promise.all(seqs.map((seq) => this.read(() => readListingEntry(this.ctx, seq, this.list))));
    if (docs.some((d) => d === null)) return null;
    const entries = docs.map((d) => ({ seq: d!.seq, container: d!.container, incarnation: d!.incarnation, createdAt: d!.createdAt }));
    // The same copy whoever writes it; a reader without write rights leaves it to another.
    await this.ctx.m.listing.collection.insertOne({ _id: id, entries } as never).catch(() => undefined);
    return new Map(entries.map((e) => [e.seq, e]));
  }
}
