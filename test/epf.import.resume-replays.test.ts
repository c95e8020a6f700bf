/**
 * A resumed full import tells the rows it writes again (replays, imported)
 * from rows that repeat a key (rejected) by what the server stored, without
 * reading rows back by compound `_id` (src/ingest/epf/load/replay.ts): the
 * checkpoint is a few batches behind the stop, and the stop may fall between
 * a batch's insert and the write of its rejects. The SIGKILL of a real run
 * mid-import is test/epf.job.test.ts ("killed with SIGKILL mid-download and
 * mid-import"): every table ends exactly as generated.
 */
import { expect, it } from 'vitest';
import { importTable, type ImportCheckpoint, type ImportTableOptions } from '../src/ingest/epf/load/import-table.js';
import { stagingCollectionName } from '../src/ingest/epf/load/switch.js';
import { commandCounting } from './support/command-count.js';
import { databasePerFile } from './support/database.js';
import { tempDirPerFile, writeEpf, type TableSpec } from './support/epf-files.js';

const db = databasePerFile();
const tmp = tempDirPerFile();
const mdb = () => db().connection.db!;
const commands = commandCounting(db);

/** 30 rows, compound key; record 25 repeats the key of record 3 with another price. */
function spec(): TableSpec {
  const rows = Array.from({ length: 30 }, (_, k) => ['1', String(k + 1), `${k + 1}.990`, 'USD', '143441']);
  rows[24] = ['1', '3', '0.500', 'USD', '143441'];
  return {
    columns: ['export_date', 'application_id', 'retail_price', 'currency_code', 'storefront_id'],
    primaryKey: ['application_id', 'storefront_id'],
    dbTypes: ['BIGINT', 'BIGINT', 'DECIMAL(9,3)', 'VARCHAR(20)', 'INTEGER'],
    rows,
  };
}

const base = (table: string, file: string, over: Partial<ImportTableOptions> = {}): ImportTableOptions => ({
  db: mdb(), file, table, source: `pricing20250427/${table}.tbz`, mode: 'full', exportDate: '20250427', batchSize: 10, maxRejectFraction: 0.1, ...over,
});

/** Imports until the third batch is committed; returns the checkpoint after the first (two batches' checkpoints "lost"). */
async function stopAfterThirdBatch(table: string, file: string): Promise<ImportCheckpoint> {
  const saved: ImportCheckpoint[] = [];
  const stopped = await importTable(
    base(table, file, {
      onBatch: async (cp) => {
        saved.push(cp);
        if (saved.length === 3) throw new Error('simulated stop');
      },
    }),
  ).catch((e: unknown) => e);
  expect((stopped as Error).message).toBe('simulated stop');
  return saved[0]!;
}

async function expectExact(table: string, result: Awaited<ReturnType<typeof importTable>>) {
  expect(result).toMatchObject({ rows: 29, rejected: 1, recordsWritten: 30 });
  const stored = await mdb().collection(stagingCollectionName(table, '20250427')).find({}).sort({ application_id: 1 }).toArray();
  // Every key once: 1 to 30 but 25 (record 25 holds key 3).
  expect(stored.map((d) => d.application_id)).toEqual(Array.from({ length: 30 }, (_, k) => k + 1).filter((i) => i !== 25));
  expect(stored.find((d) => d.application_id === 3)?.retail_price).toBe('3.990'); // the first row of the key
  const rejects = await mdb().collection('epf_rejects').find({ table }).toArray();
  expect(rejects.map((r) => [r.record, r.reason])).toEqual([[25, expect.stringMatching(/^duplicate primary key/)]]);
}

it('two batches replayed: the repeated key rejected before the stop is known by its reject, every replayed row is imported once', async () => {
  const file = await writeEpf(tmp(), 'replay', spec());
  const resume = await stopAfterThirdBatch('replay', file);
  expect(resume).toMatchObject({ number: 10, imported: 10, batchSize: 10 });
  await expectExact('replay', await importTable(base('replay', file, { resume })));
});

it('the stop fell while the insert of the batch in flight ran, part of the batch landed: still exact', async () => {
  const file = await writeEpf(tmp(), 'in-flight', spec());
  const resume = await stopAfterThirdBatch('in-flight', file);
  // As if the stop came before the batch's insert returned: no marker, no rejects, two of its rows not stored.
  expect((await mdb().collection('epf_import_batches').deleteOne({ _id: `${resume.importId}#20` as never })).deletedCount).toBe(1);
  await mdb().collection('epf_rejects').deleteOne({ _id: 'pricing20250427/in-flight.tbz#25' as never });
  const staging = mdb().collection(stagingCollectionName('in-flight', '20250427'));
  await staging.deleteMany({ application_id: { $in: [28, 29] } });
  expect(await staging.countDocuments()).toBe(27);
  // Another batch size in the environment: the resume keeps the checkpoint's batches.
  await expectExact('in-flight', await importTable(base('in-flight', file, { resume, batchSize: 7 })));
});

it('a reject of an earlier file under the same name (a re-post) is not taken for a repeated key of this one', async () => {
  const file = await writeEpf(tmp(), 'reposted', spec());
  const resume = await stopAfterThirdBatch('reposted', file);
  // Record 15 of the file's earlier version was a repeated key; in this version it is a replayed row.
  await mdb().collection('epf_rejects').insertOne({
    _id: 'pricing20250427/reposted.tbz#15' as never, record: 15, raw: '1\x0115\x019.990\x01USD\x01143441', reason: 'duplicate primary key in a full export', table: 'reposted-old', offset: 1,
  });
  const result = await importTable(base('reposted', file, { resume }));
  expect(result).toMatchObject({ rows: 29, rejected: 1 });
});

it('replayed batches whose insert returned before the stop are judged by their markers: not sent again, no count, no read of the table', async () => {
  const file = await writeEpf(tmp(), 'marked', spec());
  const resume = await stopAfterThirdBatch('marked', file);
  expect(await mdb().collection('epf_import_batches').countDocuments({ import: resume.importId })).toBe(3);
  const staging = stagingCollectionName('marked', '20250427');
  const { result, commands: sent } = await commands.count(() => importTable(base('marked', file, { resume, db: commands.connection().db! })));
  await expectExact('marked', result);
  // Before the markers: the replayed rows sent again, and one count of the table per resume (FerretDB v1 reads every row for it).
  expect([...sent.keys()].filter((k) => k.startsWith('count') || [`aggregate ${staging}`, `find ${staging}`, `insert ${staging}`].includes(k))).toEqual([]);
  expect(await mdb().collection('epf_import_batches').countDocuments({ import: resume.importId })).toBe(0); // deleted once every row is in
});

it('a checkpoint of a version without markers still resumes exactly', async () => {
  const file = await writeEpf(tmp(), 'unmarked', spec());
  const { importId, ...resume } = await stopAfterThirdBatch('unmarked', file);
  await mdb().collection('epf_import_batches').deleteMany({ import: importId });
  await expectExact('unmarked', await importTable(base('unmarked', file, { resume })));
});

it('a fresh import of a table deletes the markers an earlier, given-up import of it left', async () => {
  const file = await writeEpf(tmp(), 'given-up', spec());
  const resume = await stopAfterThirdBatch('given-up', file);
  const marks = mdb().collection('epf_import_batches');
  expect(await marks.countDocuments({ import: resume.importId })).toBe(3);
  await expectExact('given-up', await importTable(base('given-up', file)));
  expect(await marks.countDocuments({ import: resume.importId })).toBe(0);
});
