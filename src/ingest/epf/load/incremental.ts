/**
 * How an incremental export reaches a live table, chosen per server from the
 * server's own query plan (issue 14, "Incrementals over big tables").
 *
 * Measured on the embedded FerretDB v1.24.2 (SQLite), 20,000 documents, a busy
 * 2-core machine: `explain` of `find({ _id })` reports `filterPushdown: false`
 * and a `SCAN` for object (compound) and number `_id`s; `findOne` by exact
 * `_id` took 457 ms (object) and 1,657 ms (number), `replaceOne` upsert by
 * exact `_id` 1,438 ms (object), `replaceOne({ _id, export_date: { $lte } })`
 * 1,002 ms even for a string `_id`, while `insertOne` took 5.8-49 ms (the
 * unique `_id` index checks inserts). Every per-row update or delete thus
 * scans the table: 3 rows in 600 s over 2M rows (issue 14).
 *
 * - `'upsert'` (the server serves `{ _id, export_date }` by index, e.g. MongoDB):
 *   per row `replaceOne({ _id, export_date: { $lte: new } }, row, { upsert })`.
 *   A stored row with a newer `export_date` makes the filter miss and the
 *   upsert's insert hit the `_id` index: duplicate key, counted as stale and
 *   left alone (Apple's importer compares `export_date` the same way).
 * - `'generation'` (otherwise, e.g. FerretDB v1): the incremental's rows are
 *   inserted into a side collection; then one sequential read of the live
 *   table and one of the side collection are merged into a new staging
 *   collection by inserts only, and switched in through the table's pointer
 *   (load/switch.ts). Readers keep the old generation, whole, until the switch.
 *   The job's memory holds one key and `export_date` per incremental row
 *   (about 100 bytes each); the server streams both reads.
 */
import mongoose from 'mongoose';
import type { AnyBulkWriteOperation, Collection, Db, Document } from 'mongodb';

/** Write strategy of an incremental (see the module comment). */
export type IncrementalWrite = 'upsert' | 'generation' | 'delete-insert';

/** Rows per insert command while building a generation. */
const COPY_BATCH = 1000;
const { BSON } = mongoose.mongo;

/** Stable text of a key (`_id`), for maps: its BSON bytes. */
export function keyOf(id: unknown): string {
  return Buffer.from(BSON.serialize({ k: id })).toString('base64');
}

/** A row's `export_date` as a number (BIGINT may be stored as Long); -Infinity when absent. */
export function exportDateOf(doc: Document): number {
  const v = doc.export_date as unknown;
  if (v === null || v === undefined) return -Infinity;
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && typeof (v as { toNumber?: unknown }).toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  return Number((v as { valueOf(): unknown }).valueOf());
}

/**
 * Whether the server answers `{ _id: <sampleId>, export_date: { $lte } }` on
 * `collection` from an index, judged by its `explain`: MongoDB plans with an
 * index scan stage (IDHACK, EXPRESS_IXSCAN, IXSCAN); FerretDB v1 reports
 * `filterPushdown` and a SQLite plan (`SEARCH ... USING INDEX` vs `SCAN`).
 */
export async function idFilterIndexed(db: Db, collection: string, sampleId: unknown): Promise<boolean> {
  const explain = (await db.command({
    explain: { find: collection, filter: { _id: sampleId, export_date: { $lte: 0 } } },
    verbosity: 'queryPlanner',
  })) as Document;
  const text = JSON.stringify(explain);
  if ('filterPushdown' in explain) return explain.filterPushdown === true && /USING (COVERING )?INDEX/.test(text) && !/"SCAN /.test(text);
  return /"stage":"(IDHACK|EXPRESS_IXSCAN|EXPRESS_CLUSTERED_IXSCAN|IXSCAN|CLUSTERED_IXSCAN)"/.test(text);
}

/**
 * Applies rows by `_id`, never over a stored row with a newer `export_date`.
 * @returns how many rows were stale (left out).
 * @throws write errors other than the duplicate key of a stale row.
 */
export async function upsertNewer(collection: Collection, docs: Document[], chunk: number): Promise<number> {
  let stale = 0;
  for (let at = 0; at < docs.length; at += chunk) {
    const ops = docs.slice(at, at + chunk).map(replaceIfNotNewer);
    try {
      await collection.bulkWrite(ops, { ordered: false });
    } catch (err) {
      if (!onlyDuplicateKeys(err)) throw err;
      // FerretDB v1 stops an unordered bulk at its first error: redo the chunk one op at a time
      // (an op already applied matches again and writes the same row).
      for (const op of ops) {
        try {
          await collection.bulkWrite([op], { ordered: true });
        } catch (e) {
          if (!onlyDuplicateKeys(e)) throw e;
          stale += 1;
        }
      }
    }
  }
  return stale;
}

function replaceIfNotNewer(d: Document): AnyBulkWriteOperation {
  const date = d.export_date as unknown;
  const filter = date === null || date === undefined ? { _id: d._id } : { _id: d._id, export_date: { $lte: date } };
  return { replaceOne: { filter, replacement: d, upsert: true } };
}

function onlyDuplicateKeys(err: unknown): boolean {
  const e = err as { writeErrors?: unknown; code?: number };
  const raw = e.writeErrors;
  const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as { code?: number }[];
  if (writeErrors.length === 0) return e.code === 11000;
  return writeErrors.every((w) => w.code === 11000);
}

/**
 * Builds `target` from the live collection and the incremental's rows in
 * `side`: a live row is replaced by the incremental's row with its key unless
 * the live row's `export_date` is newer. `target` is dropped and built anew.
 * @returns rows written to `target` and incremental rows left out as stale.
 */
export async function buildGeneration(
  db: Db,
  live: string,
  side: string,
  target: string,
  signal?: AbortSignal,
): Promise<{ rows: number; stale: number }> {
  // promoteValues: false keeps Long, Int32 and Double as they were stored (and keys comparable).
  const raw = { promoteLongs: false, promoteValues: false } as const;
  const incoming = new Map<string, number>();
  for await (const d of db.collection(side).find({}, { ...raw, projection: { _id: 1, export_date: 1 } }).batchSize(COPY_BATCH)) {
    incoming.set(keyOf(d._id), exportDateOf(d));
  }
  await db.dropCollection(target).catch(() => undefined);
  await db.createCollection(target);
  const out = db.collection(target);
  const staleKeys = new Set<string>();
  let rows = 0;
  let batch: Document[] = [];
  const flush = async () => {
    if (batch.length) await out.insertMany(batch, { ordered: false });
    rows += batch.length;
    batch = [];
    signal?.throwIfAborted();
  };
  for await (const d of db.collection(live).find({}, raw).batchSize(COPY_BATCH)) {
    const key = keyOf(d._id);
    const newer = incoming.get(key);
    if (newer !== undefined) {
      if (exportDateOf(d) <= newer) continue; // replaced by the incremental's row
      staleKeys.add(key);
    }
    batch.push(d);
    if (batch.length >= COPY_BATCH) await flush();
  }
  for await (const d of db.collection(side).find({}, raw).batchSize(COPY_BATCH)) {
    if (staleKeys.has(keyOf(d._id))) continue;
    batch.push(d);
    if (batch.length >= COPY_BATCH) await flush();
  }
  await flush();
  return { rows, stale: staleKeys.size };
}
