/**
 * After a resume, which refused rows are replays and which repeat a key.
 *
 * A full import (or an incremental's side collection) inserts each batch into
 * a collection it started empty, and a duplicate key is refused (11000). In
 * a fresh import that is a second row with a key already stored: rejected.
 * After a resume, the rows written since the last saved checkpoint (the
 * runner saves one at most once a second, so a few batches) are written
 * again and refused too: they are replays, imported. Rows are told apart by
 * what the server stored, without reading rows back by their compound `_id`
 * (FerretDB v1 answers any filter but an exact string or ObjectId `_id` by
 * reading the whole collection: 14 minutes at 800k rows, issue 14):
 *
 * 1. A refused row whose reject document exists (exact string `_id`
 *    `<source>#<record>`, the same raw text, a duplicate-key reason) repeats
 *    a key: it was rejected before the stop.
 * 2. The others are replays, as long as the collection holds that many rows
 *    beyond the checkpoint (`landed`: the collection's count, read once per
 *    resume, less the rows the checkpoint counts and the rows inserted since). Batches keep the
 *    checkpoint's boundaries (`ImportCheckpoint.batchSize`), so the rows of
 *    the batch in flight at the stop are judged together.
 * 3. Only when that batch held more refused rows than rows landed (it held
 *    a repeated key whose reject was not written before the stop) are the
 *    stored documents compared with the refused rows (same BSON bytes means
 *    a replay): by `_id $in` on MongoDB, by one sequential read of the
 *    collection on FerretDB v1.
 */
import mongoose from 'mongoose';
import pLimit from 'p-limit';
import type { Collection, Db, Document } from 'mongodb';
import { decodeUtf8, type RawRecord } from '../flatfile/records.js';

/** Exact-`_id` reads of reject documents in flight at once. */
const PARALLEL_READS = 16;
/** The reason prefix of a reject for a repeated key (import-table.ts). */
export const DUPLICATE_REASON = 'duplicate primary key';

/** One refused row of a batch. */
export interface RefusedRow {
  doc: Document;
  rec: RawRecord;
}

/** Judges the refused rows of a resumed import (see the module comment); one per resume. */
export class ReplayJudge {
  private landed: number | undefined;
  private insertedSinceResume = 0;

  /**
   * @param collection the collection the import writes (started empty by the import)
   * @param rejects the rejects collection
   * @param source names the file in reject `_id`s, e.g. `itunes20250427/application.tbz`
   * @param importedAtCheckpoint rows the resumed checkpoint counts as imported (stored in `collection`)
   */
  constructor(
    private readonly db: Db,
    private readonly collection: Collection,
    private readonly rejects: Collection,
    private readonly source: string,
    private readonly importedAtCheckpoint: number,
  ) {}

  /** Counts rows this resumed import inserted (call after each insert, before {@link judge}). */
  inserted(rows: number): void {
    this.insertedSinceResume += rows;
  }

  /** For each refused row of one batch, in order: true for a replay (imported), false for a repeated key (rejected). */
  async judge(refused: RefusedRow[]): Promise<boolean[]> {
    if (refused.length === 0) return [];
    const repeated = await this.rejectedBefore(refused);
    const open = refused.map((_, i) => i).filter((i) => !repeated[i]);
    const out = refused.map(() => false);
    if (open.length === 0) return out;
    // Rows stored beyond the checkpoint, less those this resume inserted: the rows written before the stop.
    this.landed ??= (await this.count()) - this.importedAtCheckpoint - this.insertedSinceResume;
    if (open.length <= this.landed) {
      this.landed -= open.length;
      for (const i of open) out[i] = true;
      return out;
    }
    const same = await sameAsStored(this.collection, open.map((i) => refused[i]!.doc), await this.ferret());
    open.forEach((i, k) => (out[i] = same[k]!));
    this.landed = Math.max(0, this.landed - same.filter(Boolean).length);
    return out;
  }

  /**
   * Exact count of the collection. FerretDB v1 reads the whole collection for
   * any count: the `count` command does so in flat memory (measured at 200k
   * rows: 9 s and no growth, where `countDocuments` took 28 s and grew the
   * server by 500 MB). MongoDB: `countDocuments`, exact after an unclean
   * shutdown too (a `count` without a query answers from metadata).
   */
  private async count(): Promise<number> {
    if (!(await this.ferret())) return this.collection.countDocuments({});
    const res = await this.db.command({ count: this.collection.collectionName });
    return Number(res.n);
  }

  private ferretKnown: Promise<boolean> | undefined;
  private ferret(): Promise<boolean> {
    return (this.ferretKnown ??= isFerretDb(this.db));
  }

  /** Whether each row was rejected as a repeated key before the stop (its reject document, by exact `_id`). */
  private async rejectedBefore(refused: RefusedRow[]): Promise<boolean[]> {
    const limit = pLimit(PARALLEL_READS);
    return Promise.all(
      refused.map(({ rec }) =>
        limit(async () => {
          const reject = await this.rejects.findOne({ _id: `${this.source}#${rec.number}` as never }, { projection: { raw: 1, reason: 1, offset: 1 } });
          // Same record of the same file: a re-posted file under the same name has other bytes.
          return (
            reject !== null &&
            String(reject.reason).startsWith(DUPLICATE_REASON) &&
            reject.offset === rec.offset &&
            decodeUtf8(rec.raw).text.startsWith(String(reject.raw))
          );
        }),
      ),
    );
  }
}

/** For each doc, whether the stored document with its `_id` is identical (same BSON bytes). */
async function sameAsStored(collection: Collection, docs: Document[], ferret: boolean): Promise<boolean[]> {
  const { BSON } = mongoose.mongo;
  const bytes = (d: Document) => Buffer.from(BSON.serialize(d));
  const key = (id: unknown) => bytes({ k: id }).toString('base64');
  const wanted = new Set(docs.map((d) => key(d._id)));
  const byId = new Map<string, Document>();
  // promoteValues: false keeps int32/double/int64 distinct, so equal bytes mean equal values and types.
  const options = { promoteLongs: false, promoteValues: false } as const;
  if (ferret) {
    // One sequential read, in batches (bounded memory): a `$in` of compound ids grew FerretDB v1 to 22.8 GB at 2M rows.
    for await (const d of collection.find({}, { ...options, batchSize: 5000 })) if (wanted.has(key(d._id))) byId.set(key(d._id), d);
  } else {
    for (const d of await collection.find({ _id: { $in: docs.map((d) => d._id) } }, options).toArray()) byId.set(key(d._id), d);
  }
  return docs.map((d) => {
    const old = byId.get(key(d._id));
    return old !== undefined && bytes(old).equals(bytes(d));
  });
}

async function isFerretDb(db: Db): Promise<boolean> {
  try {
    return 'ferretdbVersion' in (await db.admin().command({ buildInfo: 1 }));
  } catch {
    return false;
  }
}
