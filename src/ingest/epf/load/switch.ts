/**
 * Publishing a fully loaded staging collection so readers never see a
 * partial table (issue 6, "Full exports"; EPF.md: Apple's rename swap broke
 * readers mid-swap).
 *
 * Every table has a pointer document in `<prefix>tables`:
 * `{ _id: table, collection, exportDate, switchedAt, previous?, pending? }`; readers
 * follow it with {@link liveCollectionName}.
 * - MongoDB: `renameCollection(staging -> <prefix><table>, dropTarget)` is
 *   atomic; the pointer names `<prefix><table>`.
 * - FerretDB v1 refuses `dropTarget` ("not implemented"). Then the staging
 *   collection is renamed to a per-export generation `<prefix><table>__<date>`
 *   (rename to a new name works there) and the pointer is flipped to it in one
 *   single-document write. The previous generation stays until the next
 *   switch, so a reader that just read the old pointer can finish; older ones
 *   are dropped.
 * Detection is by the server's answer to the rename, not by its name.
 */
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import type { Db } from 'mongodb';
import { EpfError, StagingMissingError } from '../errors.js';
import type { DecimalMode } from '../flatfile/convert.js';

/** Default collection-name prefix (issue 6, "The data model"). */
export const DEFAULT_PREFIX = 'epf_';

/** A table's pointer document in `<prefix>tables`. */
export interface TablePointer {
  _id: string;
  /** Collection readers should query. */
  collection: string;
  /** YYYYMMDD of the full export it holds. */
  exportDate: string;
  switchedAt: Date;
  /** The collection readers used before the last switch; kept until the next one (generations only). */
  previous?: string;
  /** Set while a switch is under way, naming the generation it renames to (crash recovery). */
  pending?: { exportDate: string; generation: string };
}

/** The pointer collection's name: `<prefix>tables`. */
export function pointerCollectionName(prefix = DEFAULT_PREFIX): string {
  return `${prefix}tables`;
}

/** Where a full export of `table` is loaded before the switch: `<prefix><table>__staging_<date>`. */
export function stagingCollectionName(table: string, exportDate: string, prefix = DEFAULT_PREFIX): string {
  return `${prefix}${table}__staging_${exportDate}`;
}

/** Per-export collection used when the server cannot rename over an existing collection. */
export function generationCollectionName(table: string, exportDate: string, prefix = DEFAULT_PREFIX): string {
  return `${prefix}${table}__${exportDate}`;
}

async function collectionExists(db: Db, name: string): Promise<boolean> {
  return (await db.listCollections({ name }, { nameOnly: true }).toArray()).length > 0;
}

/** True when the error says the server does not implement `dropTarget` (FerretDB v1). */
export function isDropTargetUnsupported(err: unknown): boolean {
  const e = err as { code?: unknown; codeName?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : '';
  if (/dropTarget/i.test(message) && /not (yet )?(implemented|supported)|unsupported/i.test(message)) return true;
  return (e?.code === 238 || e?.codeName === 'NotImplemented') && /dropTarget/i.test(message);
}

/**
 * Switches readers of `table` to the staging collection of `exportDate`.
 * Idempotent: after a crash between steps, calling it again ends in the same
 * state; calling it once more after success changes nothing.
 * @returns the collection readers now use.
 * @throws StagingMissingError when there is neither the staging collection nor a finished or pending switch to this export.
 */
export async function publishStaging(
  db: Db,
  table: string,
  exportDate: string,
  prefix = DEFAULT_PREFIX,
): Promise<{ collection: string }> {
  const pointers = db.collection<TablePointer>(pointerCollectionName(prefix));
  const staging = stagingCollectionName(table, exportDate, prefix);
  const target = `${prefix}${table}`;
  const before = await pointers.findOne({ _id: table });
  const hasStaging = await collectionExists(db, staging);

  let live: string;
  if (!hasStaging) {
    // Already switched, or crashed after the rename: finish what is left.
    if (before?.exportDate === exportDate && !before.pending) {
      await dropOldGenerations(db, table, prefix, before.collection, before.previous);
      return { collection: before.collection };
    }
    if (before?.pending?.exportDate !== exportDate) throw new StagingMissingError(table, staging);
    live = (await collectionExists(db, before.pending.generation)) ? before.pending.generation : target;
  } else {
    // A fresh name, so re-publishing the same export date never drops what readers use.
    let generation = generationCollectionName(table, exportDate, prefix);
    if (generation === before?.collection || generation === before?.previous) {
      generation += `_${randomBytes(3).toString('hex')}`;
    }
    if (await collectionExists(db, generation)) await db.dropCollection(generation); // unreferenced leftover
    await pointers.updateOne({ _id: table }, { $set: { pending: { exportDate, generation } } }, { upsert: true });
    live = await renameIntoPlace(db, staging, target, generation);
  }
  const previous = before?.collection && before.collection !== live ? before.collection : undefined;
  await pointers.updateOne(
    { _id: table },
    {
      $set: { collection: live, exportDate, switchedAt: new Date(), ...(previous ? { previous } : {}) },
      $unset: { pending: '', ...(previous ? {} : { previous: '' }) },
    },
    { upsert: true },
  );
  await dropOldGenerations(db, table, prefix, live, previous);
  return { collection: live };
}

/** Atomic rename over the live name where supported, else rename to a new generation. */
async function renameIntoPlace(db: Db, staging: string, target: string, generation: string): Promise<string> {
  try {
    await db.renameCollection(staging, target, { dropTarget: true });
    return target;
  } catch (err) {
    if (!isDropTargetUnsupported(err)) throw err;
  }
  await db.renameCollection(staging, generation);
  return generation;
}

/**
 * Drops generation collections of `table` other than `live` and `keep`
 * (the generation readers may still be reading). Staging collections are left alone.
 */
async function dropOldGenerations(db: Db, table: string, prefix: string, live: string, keep: string | undefined): Promise<void> {
  const pattern = new RegExp(`^${escapeRegExp(`${prefix}${table}__`)}\\d{8}(_[0-9a-f]+)?$`);
  const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
  for (const name of names) {
    if (!pattern.test(name) || name === live || name === keep) continue;
    await db.dropCollection(name).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 26) throw err; // 26: NamespaceNotFound, dropped meanwhile
    });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The collection readers of `table` should query: the pointer's, else
 * `<prefix><table>` when it exists (a table loaded by hand), else undefined.
 */
export async function liveCollectionName(db: Db, table: string, prefix = DEFAULT_PREFIX): Promise<string | undefined> {
  const pointer = await db.collection<TablePointer>(pointerCollectionName(prefix)).findOne({ _id: table });
  if (pointer?.collection) return pointer.collection;
  return (await collectionExists(db, `${prefix}${table}`)) ? `${prefix}${table}` : undefined;
}

const decimalSupport = new WeakMap<object, Promise<DecimalMode>>();

/**
 * Whether the server stores BSON Decimal128: `'decimal128'` if so, else
 * `'string'` (exact decimal text). FerretDB v1 closes the connection when a
 * Decimal128 is inserted, so the probe runs on a separate short-lived client
 * (same URI, short timeouts) and the caller's connection is never disturbed.
 * The answer is cached per client.
 * @param opts.timeoutMs bound on each probe step (ms); default 5000.
 * @throws EpfError (EPF_DECIMAL_PROBE) when the probe client cannot even reach the server.
 */
export function detectDecimalSupport(db: Db, opts: { timeoutMs?: number } = {}): Promise<DecimalMode> {
  const key = db.client as object;
  let cached = decimalSupport.get(key);
  if (!cached) {
    cached = probeDecimal(db, opts.timeoutMs ?? 5000);
    decimalSupport.set(key, cached);
    cached.catch(() => decimalSupport.delete(key)); // a failed probe is retried next time
  }
  return cached;
}

async function probeDecimal(db: Db, timeoutMs: number): Promise<DecimalMode> {
  const url = (db.client as unknown as { s?: { url?: string } }).s?.url;
  if (!url) throw new EpfError('EPF_DECIMAL_PROBE', 'Cannot probe Decimal128 support: the client has no connection string');
  const { MongoClient, Decimal128 } = mongoose.mongo;
  const probe = new MongoClient(url, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: timeoutMs,
    maxPoolSize: 1,
    retryWrites: false,
    retryReads: false,
  });
  const name = `epf__decimal_probe_${randomBytes(4).toString('hex')}`;
  try {
    try {
      await probe.db(db.databaseName).command({ ping: 1 });
    } catch (err) {
      throw new EpfError('EPF_DECIMAL_PROBE', `Cannot probe Decimal128 support: ${(err as Error).message}`, { cause: err });
    }
    try {
      const col = probe.db(db.databaseName).collection(name);
      await col.insertOne({ _id: 1, d: Decimal128.fromString('1.005') } as never);
      const back = await col.findOne({ _id: 1 } as never);
      return back?.d instanceof Decimal128 && back.d.toString() === '1.005' ? 'decimal128' : 'string';
    } catch {
      return 'string';
    }
  } finally {
    await probe.close(true).catch(() => {});
    await db.dropCollection(name).catch(() => {});
  }
}
