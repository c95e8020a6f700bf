/**
 * After a resume, which refused rows are replays and which repeat a key.
 *
 * A full import (or an incremental's side collection) inserts each batch into
 * a collection it started empty, and a duplicate key is refused (11000). In
 * a fresh import that is a second row with a key already stored: rejected.
 * After a resume, the rows written since the last saved checkpoint (the
 * runner saves one at most once a second, so a few batches) are written
 * again and refused too: they are replays, imported. Rows are told apart
 * without reading rows back by their compound or numeric `_id` (measured on
 * FerretDB v1.24: only an exact string `_id` is served by an index; an exact
 * numeric or compound `_id`, an `_id` range, a `$in` and any count read the
 * whole collection, about 25-70 µs a row; docs/epf.md):
 *
 * 0. Once a batch's insert returned, a marker is written (`BatchMarks`,
 *    exact string `_id` `<import>#<rows before the batch>`) naming which rows
 *    of the batch repeated a key. A replayed batch with a marker is not sent
 *    again: its other rows are stored, its repeats are rejected (their
 *    rejects written again). No count, no read of rows.
 * 1. Without one (the stop fell while its insert was in flight, or the
 *    checkpoint is of a version without markers): a refused row whose reject
 *    document exists (exact string `_id` `<source>#<record>`, the same raw
 *    text, a duplicate-key reason) repeats a key: it was rejected before the stop.
 * 2. The others are replays, as long as the collection holds that many rows
 *    beyond the checkpoint (`landed`: the collection's count, read once per
 *    resume and only in this case, less the rows the checkpoint counts, the
 *    rows inserted since and the replays judged by markers). Batches keep the
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
  /** Its place among the batch's documents. */
  index: number;
}

/** A batch's marker: its insert returned, and these rows of it (indexes into its documents) repeated a key. */
interface BatchMarkDoc {
  _id: string;
  import: string;
  /** `<source>/<table>`: what was imported. */
  of: string;
  repeats: number[];
}

/** The collection of batch markers: `<prefix>import_batches`. */
export function batchMarksCollectionName(prefix: string): string {
  return `${prefix}import_batches`;
}

/**
 * The batch markers of one import (see the module comment, step 0): one
 * small document per batch, read and written by exact string `_id`, deleted
 * when the import finished.
 */
export class BatchMarks {
  private readonly marks: Collection<BatchMarkDoc>;

  /**
   * @param importId names the import across its resumes (`ImportCheckpoint.importId`)
   * @param of what is imported, `<source>/<table>`
   */
  constructor(db: Db, prefix: string, private readonly importId: string, private readonly of: string) {
    this.marks = db.collection<BatchMarkDoc>(batchMarksCollectionName(prefix));
  }

  /** Which rows of the batch after `rowsBefore` rows repeated a key; null when it has no marker. */
  async read(rowsBefore: number): Promise<number[] | null> {
    const mark = await this.marks.findOne({ _id: `${this.importId}#${rowsBefore}` });
    return mark ? mark.repeats : null;
  }

  /** Marks the batch after `rowsBefore` rows as inserted, with the rows of it that repeated a key (idempotent). */
  async write(rowsBefore: number, repeats: number[]): Promise<void> {
    try {
      await this.marks.insertOne({ _id: `${this.importId}#${rowsBefore}`, import: this.importId, of: this.of, repeats });
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err; // written before the stop: the same repeats
    }
  }

  /** Deletes this import's markers (one read of the small marker collection). */
  async clear(): Promise<void> {
    await this.marks.deleteMany({ import: this.importId });
  }

  /**
   * Deletes the markers of earlier imports of the same table of the same file
   * (a run that failed or was given up mid-import), when a fresh import starts:
   * markers left behind are bounded by one import per file and table.
   */
  async clearEarlier(): Promise<void> {
    await this.marks.deleteMany({ of: this.of, import: { $ne: this.importId } });
  }
}

/** Judges the refused rows of a resumed import (see the module comment); one per resume. */
export class ReplayJudge {
  private landed: number | undefined;
  private insertedSinceResume = 0;
  private replayedByMarks = 0;
  private marksEnded = false;

  /**
   * @param collection the collection the import writes (started empty by the import)
   * @param rejects the rejects collection
   * @param source names the file in reject `_id`s, e.g. `itunes20250427/application.tbz`
   * @param importedAtCheckpoint rows the resumed checkpoint counts as imported (stored in `collection`)
   * @param marks the import's batch markers
   */
  constructor(
    private readonly db: Db,
    private readonly collection: Collection,
    private readonly rejects: Collection,
    private readonly source: string,
    private readonly importedAtCheckpoint: number,
    private readonly marks: BatchMarks,
  ) {}

  /** Counts rows this resumed import inserted (call after each insert, before {@link judge}). */
  inserted(rows: number): void {
    this.insertedSinceResume += rows;
  }

  /**
   * The rows of the batch after `rowsBefore` rows (`rows` of them) that
   * repeated a key, when its marker says its insert returned before the stop
   * (every other row of it is stored); null without a marker. After the
   * first batch without one, no later batch has one: not read any more.
   */
  async marked(rowsBefore: number, rows: number): Promise<number[] | null> {
    if (this.marksEnded) return null;
    const repeats = await this.marks.read(rowsBefore);
    if (!repeats) this.marksEnded = true;
    else this.replayedByMarks += rows - repeats.length;
    return repeats;
  }

  /** For each refused row of one batch, in order: true for a replay (imported), false for a repeated key (rejected). */
  async judge(refused: RefusedRow[]): Promise<boolean[]> {
    if (refused.length === 0) return [];
    const repeated = await this.rejectedBefore(refused);
    const open = refused.map((_, i) => i).filter((i) => !repeated[i]);
    const out = refused.map(() => false);
    if (open.length === 0) return out;
    // Rows stored beyond the checkpoint, less those this resume inserted or judged by markers: the rows written before the stop.
    this.landed ??= (await this.count()) - this.importedAtCheckpoint - this.insertedSinceResume - this.replayedByMarks;
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

/**
 * Inserts one batch (`docs`, read from `records`, after `rowsBefore` rows of
 * the file) into a collection the import started empty, marks it, and
 * returns the indexes into `docs` of the rows refused for repeating a key.
 * After a resume (`judge`), refused rows that were written before the stop
 * are replays, not repeats (see the module comment).
 * @throws write errors other than duplicate keys
 */
export async function insertBatch(
  collection: Collection,
  docs: Document[],
  records: RawRecord[],
  rowsBefore: number,
  marks: BatchMarks,
  judge?: ReplayJudge,
): Promise<number[]> {
  const marked = await judge?.marked(rowsBefore, docs.length);
  if (marked) return marked; // inserted before the stop: not sent again
  const duplicates = await insertIgnoringDuplicates(collection, docs);
  judge?.inserted(docs.length - duplicates.length);
  const replayed = judge && duplicates.length ? await judge.judge(duplicates.map((index) => ({ doc: docs[index]!, rec: records[index]!, index }))) : undefined;
  const repeats = duplicates.filter((_, k) => !replayed?.[k]);
  await marks.write(rowsBefore, repeats);
  return repeats;
}

/**
 * `insertMany(ordered: false)`; duplicate-key errors (11000) are collected
 * and returned as indexes into `docs`, any other write error is thrown.
 */
export async function insertIgnoringDuplicates(collection: Collection, docs: Document[]): Promise<number[]> {
  try {
    await collection.insertMany(docs, { ordered: false });
    return [];
  } catch (err) {
    const raw = (err as { writeErrors?: unknown }).writeErrors;
    const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as { code?: number; index: number }[];
    if (writeErrors.length === 0 || writeErrors.some((w) => w.code !== 11000)) throw err;
    return writeErrors.map((w) => w.index);
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
