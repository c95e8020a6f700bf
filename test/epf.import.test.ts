/**
 * The EPF importer against the real test server: full exports through a
 * staging collection and a switch readers never see half-done, incrementals
 * as upserts, resume after a stop mid-table, rejects, and the decimal fallback
 * (issue 6: "Parse and import", "Full exports", "Incrementals", "The data model").
 */
import { describe, expect, it } from 'vitest';
import { EpfHeaderError, NoLiveTableError, TooManyRejectsError } from '../src/ingest/epf/errors.js';
import { importTable, type ImportCheckpoint, type ImportTableOptions } from '../src/ingest/epf/load/import-table.js';
import {
  detectDecimalSupport,
  generationCollectionName,
  isDropTargetUnsupported,
  liveCollectionName,
  publishStaging,
  stagingCollectionName,
} from '../src/ingest/epf/load/switch.js';
import { databasePerFile, testMongoKind } from './support/database.js';
import { tempDirPerFile, writeEpf, type Field, type TableSpec } from './support/epf-files.js';

const db = databasePerFile();
const tmp = tempDirPerFile();
const mdb = () => db().connection.db!;

/** application_price-like rows: compound key, DECIMAL price; `tag` marks the export. */
function priceSpec(ids: number[], tag: string, mode: 'FULL' | 'INCREMENTAL' = 'FULL', extra: Field[][] = []): TableSpec {
  return {
    columns: ['export_date', 'application_id', 'retail_price', 'currency_code', 'storefront_id'],
    primaryKey: ['application_id', 'storefront_id'],
    dbTypes: ['BIGINT', 'BIGINT', 'DECIMAL(9,3)', 'VARCHAR(20)', 'INTEGER'],
    exportMode: mode,
    rows: [...ids.map((i) => [tag, String(i), `${i}.990`, 'USD', '143441']), ...extra],
  };
}

const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);

function base(table: string, file: string, over: Partial<ImportTableOptions> = {}): ImportTableOptions {
  return { db: mdb(), file, table, source: `pricing20250427/${table}.tbz`, mode: 'full', exportDate: '20250427', batchSize: 10, ...over };
}

async function rowsOf(table: string) {
  const name = await liveCollectionName(mdb(), table);
  return mdb().collection(name!).find({}).sort({ application_id: 1 }).toArray();
}

describe('EPF importer', () => {
  it('detects Decimal128 support on a separate client, leaving the main connection intact', async () => {
    const mode = await detectDecimalSupport(mdb());
    expect(mode).toBe(testMongoKind() === 'ferretdb' ? 'string' : 'decimal128');
    expect(await detectDecimalSupport(mdb())).toBe(mode); // cached
    expect(await mdb().collection('after_probe').insertOne({ ok: 1 })).toMatchObject({ acknowledged: true });
  });

  it('loads a full export into staging, then publishes it through the pointer', async () => {
    const file = await writeEpf(tmp(), 'price-full', priceSpec(ids(1, 25), '1'));
    const result = await importTable(base('price', file));
    expect(result).toMatchObject({ collection: stagingCollectionName('price', '20250427'), rows: 25, rejected: 0, recordsWritten: 25 });
    expect(await liveCollectionName(mdb(), 'price')).toBeUndefined(); // nothing published yet

    const { collection } = await publishStaging(mdb(), 'price', '20250427');
    expect(await liveCollectionName(mdb(), 'price')).toBe(collection);
    expect(await publishStaging(mdb(), 'price', '20250427')).toEqual({ collection }); // idempotent
    const pointer = await mdb().collection('epf_tables').findOne({ _id: 'price' as never });
    expect(pointer).toMatchObject({ collection, exportDate: '20250427' });
    const rows = await rowsOf('price');
    expect(rows).toHaveLength(25);
    expect(rows[0]).toMatchObject({ _id: { application_id: 1, storefront_id: 143441 }, currency_code: 'USD' });
    // FerretDB v1 stores the exact decimal text, MongoDB a Decimal128 of the same value.
    expect(String(rows[0]!.retail_price)).toBe('1.990');
    if (result.decimal === 'string') expect(rows[0]!.retail_price).toBe('1.990');
  });

  it('replaces the table with a second full while a polling reader only ever sees a whole table', async () => {
    const first = await writeEpf(tmp(), 'swap-1', priceSpec(ids(1, 40), '1'));
    await importTable(base('swap', first, { exportDate: '20250420' }));
    await publishStaging(mdb(), 'swap', '20250420');

    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      while (!stop) {
        const name = await liveCollectionName(mdb(), 'swap');
        const docs = await mdb().collection(name!).find({}).toArray();
        const tags = [...new Set(docs.map((d) => d.export_date))];
        seen.add(`${docs.length}:${tags.join(',')}`);
      }
    })();
    const second = await writeEpf(tmp(), 'swap-2', priceSpec(ids(1, 60), '2'));
    await importTable(base('swap', second, { exportDate: '20250427' }));
    const { collection } = await publishStaging(mdb(), 'swap', '20250427');
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await reader;
    expect([...seen].every((s) => s === '40:1' || s === '60:2')).toBe(true);
    expect(seen.has('60:2')).toBe(true);
    expect(await rowsOf('swap')).toHaveLength(60);

    // A third full: the generation before the previous one is dropped, the previous one kept.
    const third = await writeEpf(tmp(), 'swap-3', priceSpec(ids(1, 5), '3'));
    await importTable(base('swap', third, { exportDate: '20250504' }));
    const latest = await publishStaging(mdb(), 'swap', '20250504');
    const names = (await mdb().listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => n.startsWith('epf_swap'));
    if (latest.collection === 'epf_swap') {
      expect(names).toEqual(['epf_swap']); // MongoDB: renamed over the live name
    } else {
      expect(names.sort()).toEqual([collection, latest.collection].sort()); // FerretDB: previous generation kept
      expect(names).not.toContain(generationCollectionName('swap', '20250420'));
    }
  });

  it('finishes a switch interrupted after the rename, and a repeated publish changes nothing', async () => {
    const file = await writeEpf(tmp(), 'crash', priceSpec(ids(1, 12), '1'));
    await importTable(base('crash', file));
    const staging = stagingCollectionName('crash', '20250427');
    const generation = generationCollectionName('crash', '20250427');
    // Steps 1-2 of publishStaging by hand, then a "crash" before the pointer is written.
    await mdb().collection('epf_tables').updateOne({ _id: 'crash' as never }, { $set: { pending: { exportDate: '20250427', generation } } }, { upsert: true });
    try {
      await mdb().renameCollection(staging, 'epf_crash', { dropTarget: true });
    } catch (err) {
      if (!isDropTargetUnsupported(err)) throw err;
      await mdb().renameCollection(staging, generation);
    }
    const done = await publishStaging(mdb(), 'crash', '20250427');
    expect(await liveCollectionName(mdb(), 'crash')).toBe(done.collection);
    expect(await rowsOf('crash')).toHaveLength(12);
    const pointer = await mdb().collection('epf_tables').findOne({ _id: 'crash' as never });
    expect(pointer?.pending).toBeUndefined();
    expect(await publishStaging(mdb(), 'crash', '20250427')).toEqual(done);
  });

  it('applies an incremental as upserts that change exactly its rows', async () => {
    const full = await writeEpf(tmp(), 'inc-full', priceSpec(ids(1, 30), '1'));
    await importTable(base('inc', full));
    await publishStaging(mdb(), 'inc', '20250427');
    const before = await rowsOf('inc');

    const spec = priceSpec([], '2', 'INCREMENTAL', [
      ['2', '5', '0.000', 'EUR', '143441'], // changed
      ['2', '17', '17.490', 'USD', '143441'], // changed
      ['2', '5', '4.990', 'USD', '143442'], // new: same app, other storefront
    ]);
    const file = await writeEpf(tmp(), 'inc-1', spec);
    const result = await importTable(base('inc', file, { mode: 'incremental', exportDate: '20250430' }));
    expect(result).toMatchObject({ collection: await liveCollectionName(mdb(), 'inc'), rows: 3, rejected: 0 });

    const after = await rowsOf('inc');
    expect(after).toHaveLength(31);
    const key = (d: Record<string, unknown>) => JSON.stringify(d._id);
    const changed = new Set(['{"application_id":5,"storefront_id":143441}', '{"application_id":17,"storefront_id":143441}']);
    for (const old of before) {
      const now = after.find((d) => key(d) === key(old))!;
      if (changed.has(key(old))) expect(now.export_date).toBe(2);
      else expect(now).toEqual(old);
    }
    const added = after.find((d) => key(d) === '{"application_id":5,"storefront_id":143442}');
    expect(added).toMatchObject({ export_date: 2, currency_code: 'USD' });
    expect(String(after.find((d) => key(d) === '{"application_id":5,"storefront_id":143441}')!.retail_price)).toBe('0.000');
  });

  it('applies an incremental by delete-insert per batch with the same result, last row per key winning', async () => {
    const full = await writeEpf(tmp(), 'di-full', priceSpec(ids(1, 30), '1'));
    await importTable(base('di', full));
    await publishStaging(mdb(), 'di', '20250427');
    const before = await rowsOf('di');
    const spec = priceSpec([], '2', 'INCREMENTAL', [
      ['2', '5', '9.000', 'EUR', '143441'],
      ['2', '5', '0.000', 'EUR', '143441'], // same key again: this one wins
      ['2', '31', '1.000', 'USD', '143441'], // new
    ]);
    const file = await writeEpf(tmp(), 'di-1', spec);
    const result = await importTable(base('di', file, { mode: 'incremental', exportDate: '20250430', incrementalWrite: 'delete-insert' }));
    expect(result).toMatchObject({ rows: 3, rejected: 0 });
    const after = await rowsOf('di');
    expect(after).toHaveLength(31);
    expect(after.filter((d) => d.export_date === 2).map((d) => [d.application_id, String(d.retail_price)])).toEqual([[5, '0.000'], [31, '1.000']]);
    expect(after.filter((d) => d.export_date === 1)).toEqual(before.filter((d) => d.application_id !== 5));
  });

  it('resumes a full import stopped mid-table from the last checkpoint, without duplicates', async () => {
    const bad: Field[][] = [['1', '999', '1.000', 'USD']]; // one field short
    const file = await writeEpf(tmp(), 'resume', priceSpec(ids(1, 55), '1', 'FULL', bad));
    let saved: ImportCheckpoint | undefined;
    let calls = 0;
    const stopped = await importTable(
      base('resume', file, {
        maxRejectFraction: 0.1,
        onBatch: async (cp) => {
          calls += 1;
          // The 4th batch is committed, but its checkpoint is "lost": the resume replays it.
          if (calls === 4) throw new Error('simulated stop');
          saved = cp;
        },
      }),
    ).catch((e: unknown) => e);
    expect((stopped as Error).message).toBe('simulated stop');
    expect(saved).toMatchObject({ number: 30, imported: 30, rejected: 0 });
    const staging = mdb().collection(stagingCollectionName('resume', '20250427'));
    expect(await staging.countDocuments()).toBe(40);

    const fractions: number[] = [];
    const result = await importTable(base('resume', file, { maxRejectFraction: 0.1, resume: saved, onBatch: async (_cp, f) => void fractions.push(f) }));
    expect(result).toMatchObject({ rows: 55, rejected: 1, recordsWritten: 56 });
    expect(fractions.at(-1)).toBe(1);
    const docs = await staging.find({}).toArray();
    expect(docs.map((d) => d.application_id).sort((a, b) => a - b)).toEqual(ids(1, 55));
    const rejects = await mdb().collection('epf_rejects').find({ table: 'resume' }).toArray();
    expect(rejects).toEqual([
      expect.objectContaining({ _id: 'pricing20250427/resume.tbz#56', file: 'pricing20250427/resume.tbz', record: 56, raw: '1\x01999\x011.000\x01USD', reason: 'expected 5 fields, got 4' }),
    ]);

    // Replaying the tail again (same checkpoint) neither duplicates rows nor rejects.
    await importTable(base('resume', file, { maxRejectFraction: 0.1, resume: saved }));
    expect(await staging.countDocuments()).toBe(55);
    expect(await mdb().collection('epf_rejects').countDocuments({ table: 'resume' })).toBe(1);
  });

  it('rejects a repeated primary key inside one full export instead of hiding it', async () => {
    const spec = priceSpec([1, 2, 3], '1', 'FULL', [['1', '2', '0.500', 'USD', '143441'], ['1', '4', '4.990', 'USD', '143441']]);
    const file = await writeEpf(tmp(), 'dupe', spec);
    const result = await importTable(base('dupe', file, { maxRejectFraction: 0.5 }));
    expect(result).toMatchObject({ rows: 4, rejected: 1, recordsWritten: 5 });
    const reject = await mdb().collection('epf_rejects').findOne({ table: 'dupe' });
    expect(reject).toMatchObject({ record: 4, reason: expect.stringMatching(/duplicate primary key/) });

    // Resumed from the very start, every row is a duplicate: identical ones are replays, the other is still rejected.
    const { readHeader } = await import('../src/ingest/epf/flatfile/header.js');
    const resume = { offset: (await readHeader(file)).dataOffset, number: 0, imported: 0, rejected: 0, replacedUtf8: 0 };
    expect(await importTable(base('dupe', file, { maxRejectFraction: 0.5, resume }))).toMatchObject({ rows: 4, rejected: 1 });
    const stored = await mdb().collection(stagingCollectionName('dupe', '20250427')).find({}).sort({ application_id: 1 }).toArray();
    expect(stored.map((d) => String(d.retail_price))).toEqual(['1.990', '2.990', '3.990', '4.990']);
  });

  it('fails the table above maxRejectFraction, and refuses mismatched modes and orphan incrementals', async () => {
    const bad: Field[][] = ids(1, 3).map((i) => ['1', String(100 + i), 'x']);
    const file = await writeEpf(tmp(), 'bad', priceSpec(ids(1, 20), '1', 'FULL', bad));
    const err = await importTable(base('bad', file, { maxRejectFraction: 0.1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooManyRejectsError);
    expect(err).toMatchObject({ code: 'EPF_TOO_MANY_REJECTS', rejected: 3, recordsWritten: 23, file });

    await expect(importTable(base('bad', file, { mode: 'incremental' }))).rejects.toBeInstanceOf(EpfHeaderError);
    const inc = await writeEpf(tmp(), 'orphan', priceSpec([1], '2', 'INCREMENTAL'));
    await expect(importTable(base('orphan', inc, { mode: 'incremental' }))).rejects.toBeInstanceOf(NoLiveTableError);
  });

  it('judges the reject limit over the whole file across retries: a retry resuming past the failing batch fails too', async () => {
    // 20 good rows, then 3 bad ones at the end: the last batch takes the file over 10%.
    const bad: Field[][] = ids(1, 3).map((i) => ['1', String(100 + i), 'x']);
    const file = await writeEpf(tmp(), 'late-bad', priceSpec(ids(1, 20), '1', 'FULL', bad));
    let saved: ImportCheckpoint | undefined;
    const onBatch = async (cp: ImportCheckpoint) => {
      saved = cp;
    };
    const first = await importTable(base('late', file, { maxRejectFraction: 0.1, onBatch })).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(TooManyRejectsError);
    expect(saved).toMatchObject({ number: 23, rejected: 3 }); // the checkpoint past the last batch was saved
    for (let attempt = 2; attempt <= 3; attempt++) {
      const again = await importTable(base('late', file, { maxRejectFraction: 0.1, onBatch, resume: saved })).catch((e: unknown) => e);
      expect(again, `attempt ${attempt}`).toBeInstanceOf(TooManyRejectsError);
      expect(again).toMatchObject({ rejected: 3, recordsWritten: 23 });
    }
  });

  it('counts repaired rows: text holding \x01 merged back into its LONGTEXT column', async () => {
    const spec: TableSpec = {
      columns: ['export_date', 'application_id', 'description', 'download_size'],
      primaryKey: ['application_id'],
      dbTypes: ['BIGINT', 'BIGINT', 'LONGTEXT', 'BIGINT'],
      rows: [['1', '1', 'plain', '10'], ['1', '2', 'with\x01two\x01separators', '20'], ['1', '3', 'x', 'not a number']],
    };
    const file = await writeEpf(tmp(), 'repair', spec);
    const result = await importTable(base('repair', file, { maxRejectFraction: 0.5 }));
    expect(result).toMatchObject({ rows: 2, repaired: 1, rejected: 1, recordsWritten: 3 });
    const stored = await mdb().collection(result.collection).find({}).sort({ _id: 1 }).toArray();
    expect(stored.map((d) => [d._id, d.description, d.download_size])).toEqual([[1, 'plain', 10], [2, 'with\x01two\x01separators', 20]]);
  });

  it('publishes a zero-row full export as an empty table', async () => {
    const file = await writeEpf(tmp(), 'empty', priceSpec([], '1'));
    const result = await importTable(base('empty', file));
    expect(result).toMatchObject({ rows: 0, rejected: 0, recordsWritten: 0 });
    const { collection } = await publishStaging(mdb(), 'empty', '20250427');
    expect(await liveCollectionName(mdb(), 'empty')).toBe(collection);
    expect(await mdb().collection(collection).countDocuments({})).toBe(0);
  });

  it.each(['upsert', 'generation', 'auto', 'delete-insert'] as const)(
    'incremental by %s: a stale row (older export_date) never overwrites a newer one; readers see every row (delete-insert: may miss one)',
    async (write) => {
      const table = `stale_${write}`;
      const full = await writeEpf(tmp(), `${table}-full`, priceSpec(ids(1, 30), '20'));
      await importTable(base(table, full));
      await publishStaging(mdb(), table, '20250427');

      let stop = false;
      const counts = new Set<number>();
      const reader = (async () => {
        while (!stop) {
          const name = await liveCollectionName(mdb(), table);
          counts.add(await mdb().collection(name!).countDocuments({}));
        }
      })();
      const spec = priceSpec([], '30', 'INCREMENTAL', [
        ['30', '5', '0.000', 'EUR', '143441'], // newer: applied
        ['10', '6', '6.660', 'EUR', '143441'], // older than the stored row (20): stale, left out
        ['30', '31', '31.990', 'USD', '143441'], // new
      ]);
      const file = await writeEpf(tmp(), `${table}-inc`, spec);
      const result = await importTable(base(table, file, { mode: 'incremental', exportDate: '20250430', incrementalWrite: write }));
      stop = true;
      await reader;
      expect(result).toMatchObject({ rows: 3, rejected: 0, stale: 1 });
      if (write !== 'auto') expect(result.write).toBe(write);
      else expect(result.write).toBe(testMongoKind() === 'ferretdb' ? 'generation' : 'upsert');
      expect(result.collection).toBe(await liveCollectionName(mdb(), table));

      const rows = await rowsOf(table);
      expect(rows).toHaveLength(31);
      const byApp = new Map(rows.map((r) => [r.application_id as number, r]));
      expect(byApp.get(5)).toMatchObject({ export_date: 30, currency_code: 'EUR' });
      expect(byApp.get(6)).toMatchObject({ export_date: 20, currency_code: 'USD' });
      expect(byApp.get(31)).toMatchObject({ export_date: 30 });
      // delete-insert may hide a changed row between its delete and its insert (documented)
      if (write !== 'delete-insert') expect([...counts].every((n) => n === 30 || n === 31)).toBe(true); // never a missing row
      const leftovers = (await mdb().listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => n.includes(`${table}__incremental_`));
      expect(leftovers).toEqual([]);
    },
  );
});
