/**
 * What each EPF write path costs per row on the server at hand (issue 6,
 * "Measured on FerretDB v1": compound-_id upserts were ~100x slower than inserts).
 *
 *   npx tsx bench/epf-upsert-cost.ts [insertRows=5000] [upsertRows=500]
 *
 * Uses MONGODB_URI when set, else starts the test server (tools/mongo-server.ts).
 * Prints ms/row and rows/s for insertMany and bulk replaceOne-upserts with an
 * object (compound) `_id`, a numeric `_id` and a string `_id`, both into an
 * empty collection and over existing rows, then the importer end to end
 * (parse + convert + write) for a full and an incremental file (both incremental write modes).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import type { Db, Document } from 'mongodb';
import { importTable, UPSERT_CHUNK } from '../src/ingest/epf/load/import-table.js';
import { publishStaging } from '../src/ingest/epf/load/switch.js';
import { startMongoServer } from '../tools/mongo-server.js';

const INSERT_ROWS = Number(process.argv[2] ?? 5000);
const UPSERT_ROWS = Number(process.argv[3] ?? 500);
const BATCH = 1000;

type IdKind = 'object' | 'number' | 'string';

function doc(i: number, kind: IdKind, tag = 1): Document {
  const app = 280_000_000 + i;
  const store = 143_441 + (i % 7);
  const _id = kind === 'object' ? { application_id: app, storefront_id: store } : kind === 'number' ? app * 1000 + (i % 7) : `${app}:${store}`;
  return { _id, export_date: 1745712000000 + tag, application_id: app, retail_price: `${i % 100}.990`, currency_code: 'USD', storefront_id: store };
}

async function timed(label: string, rows: number, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  console.log(`${label.padEnd(46)} ${String(rows).padStart(6)} rows  ${(ms / rows).toFixed(3).padStart(8)} ms/row  ${Math.round((rows / ms) * 1000).toString().padStart(8)} rows/s`);
}

async function batches(rows: number, write: (docs: Document[]) => Promise<unknown>, kind: IdKind, tag: number): Promise<void> {
  for (let at = 0; at < rows; at += BATCH) {
    const docs = Array.from({ length: Math.min(BATCH, rows - at) }, (_, k) => doc(at + k, kind, tag));
    await write(docs);
  }
}

/** Bulk upserts in chunks of UPSERT_CHUNK ops, as the importer writes them (larger bulks hang FerretDB v1). */
const upsert = (db: Db, name: string) => async (docs: Document[]) => {
  for (let at = 0; at < docs.length; at += UPSERT_CHUNK) {
    const ops = docs.slice(at, at + UPSERT_CHUNK).map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: d, upsert: true } }));
    await db.collection(name).bulkWrite(ops, { ordered: false });
  }
};

function epfFile(rows: number, mode: 'FULL' | 'INCREMENTAL', tag: number): Buffer {
  const rec = (fields: string[]) => fields.join('\x01') + '\x02\n';
  let text = rec(['#export_date', 'application_id', 'retail_price', 'currency_code', 'storefront_id']);
  text += rec(['#primaryKey:application_id', 'storefront_id']);
  text += rec(['#dbTypes:BIGINT', 'BIGINT', 'DECIMAL(9,3)', 'VARCHAR(20)', 'INTEGER']);
  text += rec([`#exportMode:${mode}`]);
  for (let i = 0; i < rows; i++) {
    const d = doc(i, 'object', tag);
    text += rec([String(d.export_date), String(d.application_id), d.retail_price, 'USD', String(d.storefront_id)]);
  }
  return Buffer.from(text + rec([`#recordsWritten:${rows}`]));
}

const server = await startMongoServer({});
const connection = await mongoose.createConnection(server.uri, { dbName: `pts_bench_epf_${Date.now()}` }).asPromise();
const db = connection.db!;
const dir = await mkdtemp(path.join(os.tmpdir(), 'epf-bench-'));
console.log(`server: ${server.kind}; batches of ${BATCH}, upserts in bulks of ${UPSERT_CHUNK}`);
try {
  for (const kind of ['object', 'number', 'string'] as const) {
    await timed(`insertMany, ${kind} _id`, INSERT_ROWS, () => batches(INSERT_ROWS, (d) => db.collection(`ins_${kind}`).insertMany(d, { ordered: false }), kind, 1));
  }
  // Into an empty collection, then over the rows just written, then over rows of the
  // INSERT_ROWS-row collections: on FerretDB v1 the cost grows with the collection size.
  for (const kind of ['object', 'number', 'string'] as const) {
    await timed(`upsert ${kind} _id, new rows, empty coll.`, UPSERT_ROWS, () => batches(UPSERT_ROWS, upsert(db, `ups_${kind}`), kind, 1));
    await timed(`upsert ${kind} _id, existing, ${UPSERT_ROWS}-row coll.`, UPSERT_ROWS, () => batches(UPSERT_ROWS, upsert(db, `ups_${kind}`), kind, 2));
    await timed(`upsert ${kind} _id, existing, ${INSERT_ROWS}-row coll.`, UPSERT_ROWS, () => batches(UPSERT_ROWS, upsert(db, `ins_${kind}`), kind, 2));
  }
  // Alternatives on the INSERT_ROWS-row collections: what an upsert pays for, and a batch-wise replacement.
  for (const kind of ['object', 'string'] as const) {
    await timed(`findOne by ${kind} _id, ${INSERT_ROWS}-row coll.`, UPSERT_ROWS, async () => {
      for (let i = 0; i < UPSERT_ROWS; i++) await db.collection(`ins_${kind}`).findOne({ _id: doc(i, kind)._id });
    });
    await timed(`replaceOne (no upsert) ${kind} _id, ${INSERT_ROWS}-row`, UPSERT_ROWS, () =>
      batches(UPSERT_ROWS, async (docs) => {
        for (let at = 0; at < docs.length; at += UPSERT_CHUNK) {
          await db.collection(`ins_${kind}`).bulkWrite(docs.slice(at, at + UPSERT_CHUNK).map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: d } })));
        }
      }, kind, 3));
    await timed(`deleteMany $in + insertMany ${kind} _id, ${INSERT_ROWS}-row`, UPSERT_ROWS, () =>
      batches(UPSERT_ROWS, async (docs) => {
        await db.collection(`ins_${kind}`).deleteMany({ _id: { $in: docs.map((d) => d._id) } });
        await db.collection(`ins_${kind}`).insertMany(docs, { ordered: false });
      }, kind, 4));
  }
  const full = path.join(dir, 'full');
  const inc = path.join(dir, 'inc');
  await writeFile(full, epfFile(INSERT_ROWS, 'FULL', 1));
  await writeFile(inc, epfFile(UPSERT_ROWS, 'INCREMENTAL', 2));
  const common = { db, table: 'price', source: 'bench/price.tbz', batchSize: BATCH };
  await timed('importTable full (parse+insertMany)', INSERT_ROWS, () => importTable({ ...common, file: full, mode: 'full', exportDate: '20250427' }));
  await publishStaging(db, 'price', '20250427');
  await timed('importTable incremental (parse+upsert)', UPSERT_ROWS, () => importTable({ ...common, file: inc, mode: 'incremental', exportDate: '20250430' }));
  await timed('importTable incremental (delete-insert)', UPSERT_ROWS, () =>
    importTable({ ...common, file: inc, mode: 'incremental', exportDate: '20250430', incrementalWrite: 'delete-insert' }),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
  await connection.dropDatabase().catch(() => {});
  await connection.close();
  await server.stop();
}
