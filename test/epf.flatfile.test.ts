/**
 * The EPF flat-file parser on a table of tricky records, written byte by byte
 * (EPF.md: flat-file format; issue 6: "The parser, on a table of tricky records").
 */
import { readFile } from 'node:fs/promises';
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { EpfHeaderError, RowCountMismatchError } from '../src/ingest/epf/errors.js';
import { makeConverter } from '../src/ingest/epf/flatfile/convert.js';
import { readHeader, readRecordsWritten } from '../src/ingest/epf/flatfile/header.js';
import { readRecords, READ_CHUNK_BYTES, type RawRecord } from '../src/ingest/epf/flatfile/records.js';
import { importTable } from '../src/ingest/epf/load/import-table.js';
import { databasePerFile } from './support/database.js';
import { epfBytes, record, tempDirPerFile, writeEpf, type TableSpec } from './support/epf-files.js';

const { Long, Decimal128 } = mongoose.mongo;
const db = databasePerFile();
const tmp = tempDirPerFile();

const ED = '1745712000000';
const tricky: TableSpec = {
  columns: ['export_date', 'app_id', 'store_id', 'title', 'description', 'price', 'released', 'active'],
  primaryKey: ['app_id', 'store_id'],
  dbTypes: ['BIGINT', 'BIGINT', 'INTEGER', 'VARCHAR(1000)', 'LONGTEXT', 'DECIMAL(9,3)', 'DATETIME', 'BOOLEAN'],
  // header lines in another order than usual
  order: ['legal', 'exportMode', 'dbTypes', 'primaryKey'],
  rows: [
    [ED, '42', '143441', 'Hello', 'line one\nline two\n\nline four\n', '0.990', '2012 03 06', '1'],
    [ED, '43', '143441', '', '', '', '', ''],
    [ED, '9007199254740993', '143442', 'Big id', 'x', '1234567.891', '2013 02 05 13:45:07', 'false'],
    [ED, '44', '143441', Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'bad utf-8 in title', '1.000', '2012 03 06', '0'],
    [ED, '45', '143441', 'one field short', 'x', '1.000', '2012 03 06'],
    [ED, '46', '143443', 'a\x02b lone STX is data', '日本語 ✓ 🎉', '-0.001', '2024 02 29', 'true'],
    [ED, '47', '143441', 'one too many', 'x', '1.000', '2012 03 06', '1', 'extra'],
    [ED, '48', '143441', 'not a number', 'x', '1.0.0', '2012 03 06', '1'],
  ],
};

async function all(gen: AsyncGenerator<RawRecord>): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of gen) out.push({ ...r, raw: Buffer.from(r.raw) });
  return out;
}

describe('EPF flat-file parser', () => {
  it('reads a header whose lines come in another order, with the exact data offset', async () => {
    const file = await writeEpf(tmp(), 'tricky', tricky);
    const header = await readHeader(file);
    expect(header.columns).toEqual(tricky.columns);
    expect(header.primaryKey).toEqual(['app_id', 'store_id']);
    expect(header.dbTypes).toEqual(tricky.dbTypes);
    expect(header.exportMode).toBe('FULL');
    expect(header.dataOffset).toBe(epfBytes(tricky).headerBytes);
    expect(header.extra.legal).toMatch(/^legal:/);
    expect(await readRecordsWritten(file)).toBe(8);
  });

  it('finds the column line even after other header lines', async () => {
    const bytes = Buffer.concat([
      record(['#primaryKey:id']),
      record(['#id', 'name']),
      record(['#dbTypes:INTEGER', 'VARCHAR(10)']),
      record(['1', 'a']),
      record(['#recordsWritten:1']),
    ]);
    const header = await readHeader(await writeEpf(tmp(), 'pk-first', bytes));
    expect(header).toMatchObject({ columns: ['id', 'name'], primaryKey: ['id'], dbTypes: ['INTEGER', 'VARCHAR(10)'] });
    expect(header.exportMode).toBeUndefined();
  });

  it('splits records on \\x02\\n only: bare newlines and a lone \\x02 are data; offsets chain exactly', async () => {
    const file = await writeEpf(tmp(), 'tricky', tricky);
    const header = await readHeader(file);
    const recs = await all(readRecords(file, { offset: header.dataOffset, number: 0 }));
    expect(recs.map((r) => r.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(recs[0]!.fields[4]).toBe('line one\nline two\n\nline four\n');
    expect(recs[5]!.fields[3]).toBe('a\x02b lone STX is data');
    expect(recs[0]!.offset).toBe(header.dataOffset);
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.offset).toBe(recs[i - 1]!.end);
    const bytes = await readFile(file);
    expect(bytes.subarray(recs[7]!.end).toString()).toBe('#recordsWritten:8\x02\n'); // trailer is not data
    for (const r of recs) expect(bytes.subarray(r.offset, r.end)).toEqual(Buffer.concat([r.raw, Buffer.from('\x02\n')]));
  });

  it('resumes from a mid-file offset with exactly the remaining records', async () => {
    const file = await writeEpf(tmp(), 'tricky', tricky);
    const header = await readHeader(file);
    const whole = await all(readRecords(file, { offset: header.dataOffset, number: 0 }));
    const rest = await all(readRecords(file, { offset: whole[3]!.end, number: 4 }));
    expect(rest).toEqual(whole.slice(4));
  });

  it('replaces invalid UTF-8 without crashing and flags the row', async () => {
    const file = await writeEpf(tmp(), 'tricky', tricky);
    const recs = await all(readRecords(file, { offset: (await readHeader(file)).dataOffset, number: 0 }));
    expect(recs.filter((r) => r.replacedUtf8).map((r) => r.number)).toEqual([4]);
    expect(recs[3]!.fields[3]).toBe('caf\uFFFD');
    expect(recs[3]!.fields).toHaveLength(8); // the separator after the bad byte survived
  });

  it('converts per #dbTypes: compound _id, nulls, Long beyond 2^53, exact decimals, UTC dates, booleans', async () => {
    const file = await writeEpf(tmp(), 'tricky', tricky);
    const header = await readHeader(file);
    const recs = await all(readRecords(file, { offset: header.dataOffset, number: 0 }));
    const asString = makeConverter(header, file, { decimal: 'string' });
    const asDecimal = makeConverter(header, file, { decimal: 'decimal128' });
    const out = recs.map(asString);

    expect(out[0]).toEqual({
      doc: {
        _id: { app_id: 42, store_id: 143441 },
        export_date: 1745712000000,
        app_id: 42,
        store_id: 143441,
        title: 'Hello',
        description: 'line one\nline two\n\nline four\n',
        price: '0.990',
        released: new Date(Date.UTC(2012, 2, 6)),
        active: true,
      },
    });
    expect(Object.keys((out[0] as { doc: { _id: object } }).doc._id)).toEqual(['app_id', 'store_id']); // key order
    expect(out[1]).toMatchObject({ doc: { title: null, description: null, price: null, released: null, active: null } });

    const big = (out[2] as { doc: Record<string, unknown> }).doc;
    expect(big.app_id).toBeInstanceOf(Long);
    expect((big.app_id as InstanceType<typeof Long>).toString()).toBe('9007199254740993'); // 2^53 + 1, not rounded
    expect(big.price).toBe('1234567.891');
    expect(big.released).toEqual(new Date('2013-02-05T13:45:07Z'));
    expect(big.active).toBe(false);

    const dec = (asDecimal(recs[2]!) as { doc: Record<string, unknown> }).doc.price;
    expect(dec).toBeInstanceOf(Decimal128);
    expect(String(dec)).toBe('1234567.891');

    expect(out[4]).toEqual({ reject: 'expected 8 fields, got 7' });
    expect(out[5]).toMatchObject({ doc: { description: '日本語 ✓ 🎉', price: '-0.001', released: new Date('2024-02-29T00:00:00Z'), active: true } });
    expect(out[6]).toEqual({ reject: 'expected 8 fields, got 9: no arrangement of the 1 surplus field(s) into text columns makes every typed column parse' });
    expect(out[7]).toEqual({ reject: 'column price: not a decimal: "1.0.0"' });
  });

  it('refuses a #primaryKey naming a column the table lacks, naming the file', async () => {
    const file = await writeEpf(tmp(), 'genre', {
      columns: ['export_date', 'genre_id', 'parent_id', 'name'],
      primaryKey: ['genre_ident'],
      dbTypes: ['BIGINT', 'INTEGER', 'INTEGER', 'VARCHAR(200)'],
      rows: [[ED, '36', '', 'App Store']],
    });
    const err = await readHeader(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EpfHeaderError);
    expect(err).toMatchObject({ code: 'EPF_HEADER', file });
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain('"genre_ident"');
  });

  it('finds a record whose terminator straddles two read chunks', async () => {
    const spec: TableSpec = { columns: ['id', 'text'], primaryKey: ['id'], dbTypes: ['INTEGER', 'LONGTEXT'], rows: [] };
    const headerBytes = epfBytes(spec).headerBytes;
    // Record 1 ends so that its \x02 is the last byte of the first chunk and \n the first of the next.
    const fill = READ_CHUNK_BYTES - 1 - headerBytes - '1\x01'.length;
    spec.rows = [['1', 'y'.repeat(fill)], ['2', 'after the boundary']];
    const file = await writeEpf(tmp(), 'straddle', spec);
    const recs = await all(readRecords(file, { offset: headerBytes, number: 0 }));
    expect(recs.map((r) => [r.number, r.fields[1]!.length])).toEqual([[1, fill], [2, 18]]);
    expect(recs[0]!.end).toBe(READ_CHUNK_BYTES + 1);
  });

  it('reports a missing trailer and rejects an unterminated last record', async () => {
    const { bytes } = epfBytes({ columns: ['id'], primaryKey: ['id'], dbTypes: ['INTEGER'], rows: [['1']], recordsWritten: null });
    const file = await writeEpf(tmp(), 'truncated', Buffer.concat([bytes, Buffer.from('2')]));
    expect(await readRecordsWritten(file)).toBeUndefined();
    const header = await readHeader(file);
    const recs = await all(readRecords(file, { offset: header.dataOffset, number: 0 }));
    expect(recs.map((r) => [r.number, r.unterminated ?? false])).toEqual([[1, false], [2, true]]);
    expect(makeConverter(header, file, { decimal: 'string' })(recs[1]!)).toMatchObject({ reject: expect.stringMatching(/terminator/) });
  });
});

describe('EPF flat file into the database', () => {
  it('imports the tricky table: rejects counted, Long exact, decimals exact, one replaced row', async () => {
    const file = await writeEpf(tmp(), 'tricky', tricky);
    const conn = db().connection;
    const result = await importTable({
      db: conn.db!, file, table: 'tricky', source: 'fixture20250427/tricky.tbz', mode: 'full',
      exportDate: '20250427', maxRejectFraction: 0.5, batchSize: 3,
    });
    expect(result).toMatchObject({ rows: 5, rejected: 3, replacedUtf8: 1, recordsWritten: 8 });
    const col = conn.db!.collection(result.collection);
    const big = await col.findOne({ _id: { app_id: Long.fromString('9007199254740993'), store_id: 143442 } } as never, { promoteLongs: false });
    expect(big?.app_id).toBeInstanceOf(Long);
    expect(String(big?.app_id)).toBe('9007199254740993');
    expect(String(big?.price)).toBe('1234567.891'); // Decimal128 on MongoDB, exact string on FerretDB
    if (result.decimal === 'string') expect(big?.price).toBe('1234567.891');
    const rejects = await conn.db!.collection('epf_rejects').find({ file: 'fixture20250427/tricky.tbz' }).sort({ record: 1 }).toArray();
    expect(rejects.map((r) => [r._id, r.record, r.reason])).toEqual([
      ['fixture20250427/tricky.tbz#5', 5, 'expected 8 fields, got 7'],
      ['fixture20250427/tricky.tbz#7', 7, expect.stringMatching(/^expected 8 fields, got 9: no arrangement/)],
      ['fixture20250427/tricky.tbz#8', 8, 'column price: not a decimal: "1.0.0"'],
    ]);
    expect(rejects[0]!.raw).toBe(`${ED}\x0145\x01143441\x01one field short\x01x\x011.000\x012012 03 06`);
  });

  it('fails with RowCountMismatchError when #recordsWritten is wrong', async () => {
    const file = await writeEpf(tmp(), 'wrong-count', { ...tricky, recordsWritten: 9 });
    const err = await importTable({
      db: db().connection.db!, file, table: 'wrong', source: 'x/wrong.tbz', mode: 'full', exportDate: '20250427', maxRejectFraction: 0.5,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowCountMismatchError);
    expect(err).toMatchObject({ code: 'EPF_ROW_COUNT', file, recordsWritten: 9, imported: 5, rejected: 3 });
    expect((err as Error).message).toContain(file);
  });
});
