/**
 * Imports one extracted EPF table file into MongoDB, in batches, resumable
 * from the byte offset of the last committed batch.
 *
 * Issue 6, "Parse and import" and "Measured on FerretDB v1": full exports are
 * written with plain `insertMany(ordered: false)` into a staging collection
 * (a replayed batch after a resume hits duplicate keys, which are expected);
 * incrementals are bulk upserts by `_id` into the live collection, because
 * upserts by a compound `_id` cost ~9 ms/row on FerretDB v1 against ~0.03 ms
 * for inserts. The import ends with the row-count check against
 * `#recordsWritten` (EPF.md: "Row count").
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { AnyBulkWriteOperation, Collection, Db, Document } from 'mongodb';
import { InvalidOptionError } from '../../../errors.js';
import { EpfHeaderError, MissingTrailerError, NoLiveTableError, RowCountMismatchError, TooManyRejectsError } from '../errors.js';
import { makeConverter, type DecimalMode } from '../flatfile/convert.js';
import { readHeader, readRecordsWritten } from '../flatfile/header.js';
import { decodeUtf8, readRecords, type RawRecord } from '../flatfile/records.js';
import { buildGeneration, exportDateOf, idFilterIndexed, keyOf, upsertNewer, type IncrementalWrite } from './incremental.js';
import { BatchMarks, DUPLICATE_REASON, insertBatch, insertIgnoringDuplicates, ReplayJudge } from './replay.js';
import { DEFAULT_PREFIX, detectDecimalSupport, liveCollectionName, publishStaging, stagingCollectionName } from './switch.js';

/** Progress saved after each committed batch; pass it back as `resume`. */
export interface ImportCheckpoint {
  /** Byte offset where the next unread record starts. */
  offset: number;
  /** Data rows read so far (number of the last row handled). */
  number: number;
  /** Rows written (inserted or upserted). */
  imported: number;
  /** Rows put in the rejects collection. */
  rejected: number;
  /** Rows whose invalid UTF-8 was replaced (they are imported or rejected too). */
  replacedUtf8: number;
  /** Rows imported after merging surplus `\x01`-split fields back into text (absent in checkpoints of older versions). */
  repaired?: number;
  /** The incremental write strategy chosen when the file started; kept so a resume writes the same way. */
  write?: IncrementalWrite;
  /** Incremental rows not applied because the stored row has a newer `export_date` (upsert and delete-insert). */
  stale?: number;
  /** Rows per batch when the checkpoint was saved; a resume keeps it, so replayed batches have the same rows (load/replay.ts). */
  batchSize?: number;
  /** Names the import across its resumes, for its batch markers (load/replay.ts); absent in checkpoints of older versions. */
  importId?: string;
}

/** What one table import did. */
export interface ImportResult {
  table: string;
  /** Collection written: the staging collection (full) or the live one (incremental). */
  collection: string;
  /** Rows imported (the documents in `collection` for a full import). */
  rows: number;
  rejected: number;
  replacedUtf8: number;
  /** Rows among `rows` whose surplus `\x01`-split fields were merged back into text (flatfile/repair.ts). */
  repaired: number;
  /** Incremental rows among `rows` left out because the stored row has a newer `export_date` (as Apple's importer). */
  stale: number;
  /** How an incremental was written (load/incremental.ts); absent for a full export. */
  write?: IncrementalWrite;
  /** Things the user should know, e.g. a primary-key override that replaced the header's. */
  warnings?: string[];
  /** The trailer's `#recordsWritten`; equals `rows + rejected`. */
  recordsWritten: number;
  /** How DECIMAL columns were stored. */
  decimal: DecimalMode;
  /** Why nothing of this table was imported (an incremental of a table never fully loaded); absent when imported. */
  skipped?: string;
}

/** Options of {@link importTable}. */
export interface ImportTableOptions {
  db: Db;
  /** Path of the extracted table file. */
  file: string;
  table: string;
  /** Where the file came from, e.g. `itunes20250427/application.tbz`; names rejects. */
  source: string;
  mode: 'full' | 'incremental';
  /** @defaultValue `'epf_'` */
  prefix?: string;
  /** YYYYMMDD of the export. */
  exportDate: string;
  /** Rows per write and checkpoint. @defaultValue 1000 */
  batchSize?: number;
  /** Share of bad rows (0-1) of `#recordsWritten` above which the table fails. @defaultValue 0.01 */
  maxRejectFraction?: number;
  /** How to store DECIMAL; @defaultValue the answer of detectDecimalSupport(db). */
  decimal?: DecimalMode;
  /**
   * How an incremental writes its rows (load/incremental.ts). `'auto'` asks the server's plan for
   * `{ _id, export_date }`: `'upsert'` where an index serves it (MongoDB), else `'generation'`
   * (FerretDB v1: a merged copy switched in, inserts and sequential reads only). `'upsert'`:
   * replaceOne per row unless the stored row is newer. `'generation'`: rows of one key after the
   * first are rejected as duplicates. `'delete-insert'`: per batch, deleteMany by `_id $in` and
   * `export_date $lte` then insertMany (a newer stored row stays; the newest row per key wins;
   * readers may miss a changed row for a moment). @defaultValue 'auto'
   */
  incrementalWrite?: 'auto' | IncrementalWrite;
  /**
   * Primary key per table, replacing the header's `#primaryKey:` (a known quirk of the real
   * feed). @defaultValue {@link DEFAULT_PRIMARY_KEYS}
   */
  primaryKeys?: Record<string, string[]>;
  /** The last checkpoint of an interrupted import of this same file. */
  resume?: ImportCheckpoint;
  /** Called after each committed batch with the checkpoint and the share of the file done (0-1). */
  onBatch?: (cp: ImportCheckpoint, fraction: number) => Promise<void>;
  signal?: AbortSignal;
}

/** Largest raw text kept in a reject document (characters). */
const MAX_REJECT_RAW_CHARS = 1 << 20;

/**
 * Imports `file` into `<prefix><table>__staging_<date>` (full) or into the
 * table's live collection (incremental), then checks the row count.
 * A fresh full import (no `resume`) first drops a stale staging collection.
 * Rows with a wrong field count or an unconvertible value, and (in a full
 * export) repeated primary keys, go to `<prefix>rejects` as
 * `{ _id: '<source>#<record>', file, record, raw, reason, table, exportDate }`.
 * @throws EpfHeaderError (bad header, or `#exportMode` contradicting `mode`),
 *   MissingTrailerError (no `#recordsWritten`), NoLiveTableError (incremental
 *   without a published full), TooManyRejectsError, RowCountMismatchError,
 *   InvalidOptionError, write errors other than replayed duplicate keys, and
 *   the signal's reason on abort.
 */
export async function importTable(opts: ImportTableOptions): Promise<ImportResult> {
  const { db, file, table, source, mode, exportDate, signal } = opts;
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  // A resume keeps the batches of the run it resumes (load/replay.ts judges the batch in flight at the stop as a whole).
  const batchSize = opts.resume?.batchSize ?? opts.batchSize ?? 1000;
  const maxRejectFraction = opts.maxRejectFraction ?? 0.01;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidOptionError('batchSize', `must be an integer >= 1, got ${batchSize}`);
  if (!(maxRejectFraction >= 0 && maxRejectFraction <= 1)) throw new InvalidOptionError('maxRejectFraction', `must be between 0 and 1, got ${maxRejectFraction}`);
  if (!/^\d{8}$/.test(exportDate)) throw new InvalidOptionError('exportDate', `must be YYYYMMDD, got ${JSON.stringify(exportDate)}`);

  const override = (opts.primaryKeys ?? DEFAULT_PRIMARY_KEYS)[table];
  const header = await readHeader(file, override ? { primaryKey: override } : {});
  const warnings: string[] = [];
  if (header.declaredPrimaryKey && header.declaredPrimaryKey.join() !== header.primaryKey.join()) {
    warnings.push(
      `${table}: the header declares #primaryKey:${header.declaredPrimaryKey.join(',') || '(none)'}; ` +
        `using ${header.primaryKey.join(',')} (the per-table primary-key override)`,
    );
  }
  const expectedMode = mode === 'full' ? 'FULL' : 'INCREMENTAL';
  if (header.exportMode && header.exportMode !== expectedMode) {
    throw new EpfHeaderError(file, `#exportMode:${header.exportMode}, but it is being imported as ${mode}`);
  }
  const recordsWritten = await readRecordsWritten(file);
  if (recordsWritten === undefined) throw new MissingTrailerError(file);
  const decimal = opts.decimal ?? (await detectDecimalSupport(db));
  const convert = makeConverter(header, file, { decimal });

  let collectionName: string;
  let live: string | undefined;
  let write: IncrementalWrite | undefined;
  if (mode === 'full') {
    collectionName = stagingCollectionName(table, exportDate, prefix);
    if (!opts.resume) await db.dropCollection(collectionName).catch(ignoreNamespaceNotFound);
    // Created up front: a zero-row export (legal) must still publish as an empty table.
    await db.createCollection(collectionName).catch(ignoreNamespaceExists);
  } else {
    live = await liveCollectionName(db, table, prefix);
    if (!live) throw new NoLiveTableError(table);
    write = opts.resume?.write ?? (await chooseWrite(db, live, opts.incrementalWrite ?? 'auto'));
    if (write === 'generation') {
      collectionName = sideCollectionName(table, exportDate, prefix);
      if (!opts.resume) await db.dropCollection(collectionName).catch(ignoreNamespaceNotFound);
      await db.createCollection(collectionName).catch(ignoreNamespaceExists);
    } else {
      collectionName = live;
    }
  }
  const collection = db.collection(collectionName);
  const rejects = db.collection(`${prefix}rejects`);

  const cp: ImportCheckpoint = opts.resume
    ? { ...opts.resume }
    : { offset: header.dataOffset, number: 0, imported: 0, rejected: 0, replacedUtf8: 0, repaired: 0 };
  if (write) cp.write = write;
  cp.batchSize = batchSize;
  cp.importId ??= randomBytes(8).toString('hex');
  const marks = new BatchMarks(db, prefix, cp.importId, `${source}/${table}`);
  if (!opts.resume) await marks.clearEarlier();
  const replays = opts.resume ? new ReplayJudge(db, collection, rejects, source, opts.resume.imported, marks) : undefined;
  const trailerBytes = Buffer.byteLength(`#recordsWritten:${recordsWritten}\x02\n`);
  const span = Math.max(1, (await stat(file)).size - trailerBytes - header.dataOffset); // data bytes
  const fraction = () => Math.min(1, Math.max(0, (cp.offset - header.dataOffset) / span));

  let docs: Document[] = [];
  let docRecords: RawRecord[] = [];
  let rejectDocs: Document[] = [];
  let last: RawRecord | undefined;
  let replaced = 0;
  let repaired = 0;

  const rejectDoc = (rec: RawRecord, reason: string): Document => {
    const raw = decodeUtf8(rec.raw).text;
    return {
      _id: `${source}#${rec.number}`,
      file: source,
      record: rec.number,
      raw: raw.length > MAX_REJECT_RAW_CHARS ? raw.slice(0, MAX_REJECT_RAW_CHARS) : raw,
      reason,
      table,
      exportDate,
      offset: rec.offset,
    };
  };

  const flush = async () => {
    if (!last) return;
    let imported = docs.length;
    let stale = 0;
    if (docs.length && (mode === 'full' || write === 'generation')) {
      for (const i of await insertBatch(collection, docs, docRecords, cp.number, marks, replays)) {
        imported -= 1;
        rejectDocs.push(rejectDoc(docRecords[i]!, `${DUPLICATE_REASON} in ${mode === 'full' ? 'a full export' : 'an incremental'} (the first row with this key was kept)`));
      }
    } else if (docs.length && write === 'delete-insert') {
      stale = await deleteThenInsert(collection, docs);
    } else if (docs.length) {
      stale = await upsertNewer(collection, docs, UPSERT_CHUNK);
    }
    if (rejectDocs.length) await upsertAll(rejects, rejectDocs);
    cp.offset = last.end;
    cp.number = last.number;
    cp.imported += imported;
    cp.rejected += rejectDocs.length;
    cp.replacedUtf8 += replaced;
    cp.repaired = (cp.repaired ?? 0) + repaired;
    if (stale) cp.stale = (cp.stale ?? 0) + stale;
    docs = [];
    docRecords = [];
    rejectDocs = [];
    replaced = 0;
    repaired = 0;
    last = undefined;
    await opts.onBatch?.({ ...cp }, fraction());
    judgeRejects();
  };
  // Judged on the whole file's count, carried in the checkpoint: a retry that resumes past the batch
  // that went over the limit (even the last one) fails again instead of publishing.
  const judgeRejects = () => {
    if (cp.rejected > maxRejectFraction * recordsWritten) {
      throw new TooManyRejectsError(file, cp.rejected, recordsWritten, maxRejectFraction);
    }
  };
  judgeRejects();

  for await (const rec of readRecords(file, { offset: cp.offset, number: cp.number }, signal)) {
    const result = convert(rec);
    if ('reject' in result) rejectDocs.push(rejectDoc(rec, result.reject));
    else {
      const doc = result.doc;
      if (result.repaired) repaired += 1;
      if (!('_id' in doc)) doc._id = mode === 'full' ? rec.number : `${exportDate}#${rec.number}`; // table without a key
      docs.push(doc);
      docRecords.push(rec);
    }
    if (rec.replacedUtf8) replaced += 1;
    last = rec;
    if (docs.length + rejectDocs.length >= batchSize) {
      await flush();
      signal?.throwIfAborted();
    }
  }
  await flush();
  judgeRejects();

  if (cp.imported + cp.rejected !== recordsWritten) {
    throw new RowCountMismatchError(file, recordsWritten, cp.imported, cp.rejected);
  }
  await marks.clear(); // every row is in: no batch is replayed any more
  if (write === 'generation') {
    // Merge the live table and the incremental into a new generation, then switch readers to it.
    const built = await buildGeneration(db, live!, collectionName, stagingCollectionName(table, exportDate, prefix), signal);
    ({ collection: collectionName } = await publishStaging(db, table, exportDate, prefix));
    await db.dropCollection(sideCollectionName(table, exportDate, prefix)).catch(ignoreNamespaceNotFound);
    cp.stale = built.stale;
  }
  return {
    table,
    collection: collectionName,
    rows: cp.imported,
    rejected: cp.rejected,
    replacedUtf8: cp.replacedUtf8,
    repaired: cp.repaired ?? 0,
    stale: cp.stale ?? 0,
    ...(write ? { write } : {}),
    ...(warnings.length ? { warnings } : {}),
    recordsWritten,
    decimal,
  };
}

/**
 * Known header quirks of the real feed: the v5 `genre` header declares
 * `#primaryKey:device_type_id`, a column genre lacks (issue 14; public
 * captures); its key is `genre_id` (EPF.md, "Real table schemas").
 */
export const DEFAULT_PRIMARY_KEYS: Readonly<Record<string, string[]>> = { genre: ['genre_id'] };

/** Where the generation strategy collects an incremental's rows: `<prefix><table>__incremental_<date>`. */
export function sideCollectionName(table: string, exportDate: string, prefix = DEFAULT_PREFIX): string {
  return `${prefix}${table}__incremental_${exportDate}`;
}

/** The strategy for `live`: as asked, or by the server's plan for a row of it (an empty table takes upserts). */
async function chooseWrite(db: Db, live: string, asked: 'auto' | IncrementalWrite): Promise<IncrementalWrite> {
  if (asked !== 'auto') return asked;
  const sample = await db.collection(live).findOne({}, { projection: { _id: 1 } });
  if (!sample) return 'upsert';
  return (await idFilterIndexed(db, live, sample._id)) ? 'upsert' : 'generation';
}

/**
 * Upserts per bulk command on FerretDB v1: a bulkWrite of 100 replaceOne-upserts over existing
 * documents hung for minutes there (measured; 64 were fine), so upserts go in chunks of this size.
 */
export const UPSERT_CHUNK = 50;

/** Replaces each doc by `_id` (upsert), in bulk commands of at most {@link UPSERT_CHUNK} ops. */
async function upsertAll(collection: Collection, docs: Document[]): Promise<void> {
  for (let at = 0; at < docs.length; at += UPSERT_CHUNK) {
    const ops: AnyBulkWriteOperation[] = docs
      .slice(at, at + UPSERT_CHUNK)
      .map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: d, upsert: true } }));
    await collection.bulkWrite(ops, { ordered: false });
  }
}

/**
 * Replaces a batch by deletes and one insertMany, never over a newer stored
 * row: per `export_date` of the batch one `deleteMany({ _id: { $in }, export_date: { $lte } })`,
 * then `insertMany(ordered: false)`, where a duplicate key is a stored row the
 * delete kept because it is newer (stale, left alone, as Apple's importer).
 * Of rows sharing a key the newest `export_date` wins (ties: the last), as with
 * upserts. A replay after a stop between the two steps deletes and inserts the
 * same rows again.
 * @returns incremental rows left out as stale
 */
async function deleteThenInsert(collection: Collection, docs: Document[]): Promise<number> {
  const byKey = new Map<string, Document>();
  let stale = 0;
  for (const d of docs) {
    const key = keyOf(d._id);
    const kept = byKey.get(key);
    if (kept && exportDateOf(kept) > exportDateOf(d)) stale += 1; // an older row of a key already in the batch
    else {
      if (kept && exportDateOf(kept) < exportDateOf(d)) stale += 1; // the earlier row was older
      byKey.set(key, d);
    }
  }
  const unique = [...byKey.values()];
  const byDate = new Map<string, { date: unknown; ids: unknown[] }>();
  for (const d of unique) {
    const date = d.export_date ?? null;
    const dateKey = keyOf(date);
    const group = byDate.get(dateKey) ?? { date, ids: [] as unknown[] };
    group.ids.push(d._id);
    byDate.set(dateKey, group);
  }
  for (const { date, ids } of byDate.values()) {
    // A row without export_date replaces whatever is stored (as replaceIfNotNewer does).
    const filter: Document = date === null ? { _id: { $in: ids } } : { _id: { $in: ids }, export_date: { $lte: date } };
    await collection.deleteMany(filter);
  }
  return stale + (await insertIgnoringDuplicates(collection, unique)).length;
}

function ignoreNamespaceExists(err: unknown): void {
  const e = err as { code?: number; codeName?: string; message?: string };
  if (e.code === 48 || e.codeName === 'NamespaceExists' || /already exists/i.test(e.message ?? '')) return;
  throw err;
}

function ignoreNamespaceNotFound(err: unknown): void {
  const e = err as { code?: number; codeName?: string; message?: string };
  if (e.code === 26 || e.codeName === 'NamespaceNotFound' || /ns not found/i.test(e.message ?? '')) return;
  throw err;
}
