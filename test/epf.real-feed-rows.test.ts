/**
 * Rows of the real feed (issue 14, "The real feed's rows"): text holding the
 * `\x01` separator, repaired only where the schema decides; every date form of
 * Apple's EPFParser; integers in square brackets.
 */
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { fieldConverter, makeConverter, type ConvertResult } from '../src/ingest/epf/flatfile/convert.js';
import { generateFixture } from '../src/ingest/epf/fixture/generate.js';
import { fixtureTruth } from '../src/ingest/epf/fixture/truth.js';
import { importTable } from '../src/ingest/epf/load/import-table.js';
import { extractTbz } from '../src/ingest/epf/transfer/extract.js';
import { databasePerFile } from './support/database.js';
import { tempDirPerFile } from './support/epf-files.js';
import type { EpfHeader } from '../src/ingest/epf/flatfile/header.js';
import type { RawRecord } from '../src/ingest/epf/flatfile/records.js';
import { FIXTURE_TABLES } from '../src/ingest/epf/fixture/tables.js';

const ED = '1745712000000';
const db = databasePerFile();
const tmp = tempDirPerFile();

function headerOf(name: string): EpfHeader {
  const t = FIXTURE_TABLES.find((x) => x.table === name)!;
  return { columns: t.columns, primaryKey: t.primaryKey, dbTypes: t.dbTypes, dataOffset: 0, extra: {} };
}

function rec(fields: string[]): RawRecord {
  return { number: 1, offset: 0, end: 0, fields, raw: Buffer.from(fields.join('\x01')), replacedUtf8: false };
}

function applicationRow(description: string, title = 'Photo Editor'): string[] {
  return [ED, '284000017', title, '4+', 'Acme Apps Ltd.', 'Acme Apps Ltd.', 'https://example.test', '', 'https://apps.apple.com/app/id284000017',
    'https://img.test/l.png', 'https://img.test/s.png', '2012 03 06', '© 2012 Acme', description, '1.2.3', '1.2.3', '123456'];
}

/** The fields a writer produces when a value holds \x01: it splits there. */
const asWritten = (fields: string[]): string[] => fields.join('\x01').split('\x01');

const docOf = (r: ConvertResult) => {
  if (!('doc' in r)) throw new Error(`rejected: ${r.reject}`);
  return r.doc;
};

describe('surplus fields from \\x01 inside text', () => {
  const application = makeConverter(headerOf('application'), 'application', { decimal: 'string' });

  it('merges surplus fields back into the one LONGTEXT column, keeping the separators: repaired', () => {
    const truth = applicationRow('First line\x01second part\nthird\x01\x01end');
    const fields = asWritten(truth);
    expect(fields).toHaveLength(truth.length + 3);
    const out = application(rec(fields));
    expect(out).toMatchObject({ repaired: true });
    const doc = docOf(out);
    expect(doc.description).toBe('First line\x01second part\nthird\x01\x01end');
    expect(doc).toEqual(docOf(application(rec(truth)))); // the row as it was before the writer split it
    expect(doc.download_size).toBe(123456);
    expect(doc.version).toBe('1.2.3');
    expect(doc.itunes_release_date).toEqual(new Date(Date.UTC(2012, 2, 6)));
  });

  it('does not mark a row with the right field count as repaired', () => {
    const out = application(rec(applicationRow('plain')));
    expect(out).not.toHaveProperty('repaired');
    expect(docOf(out).description).toBe('plain');
  });

  it('rejects when the surplus fits several text columns (a title with \\x01: any VARCHAR up to the date could hold it)', () => {
    const out = application(rec(asWritten(applicationRow('plain', 'Photo\x01Editor'))));
    expect(out).toEqual({ reject: expect.stringMatching(/^expected 17 fields, got 18: .*ambiguous/) });
  });

  it('rejects application_detail rows whose surplus could be in description or release_notes (two LONGTEXTs side by side)', () => {
    const detail = makeConverter(headerOf('application_detail'), 'application_detail', { decimal: 'string' });
    const row = [ED, '284000017', 'EN', 'Title', 'desc\x01ription', 'notes', ...Array(18).fill('')];
    const out = detail(rec(asWritten(row)));
    expect(out).toEqual({ reject: expect.stringMatching(/ambiguous/) });
  });

  it('falls back to other text columns when no LONGTEXT arrangement parses, and takes a single fit', () => {
    const header: EpfHeader = {
      columns: ['export_date', 'id', 'name', 'rank', 'notes'], primaryKey: ['id'], dbTypes: ['BIGINT', 'INTEGER', 'VARCHAR(200)', 'INTEGER', 'LONGTEXT'],
      dataOffset: 0, extra: {},
    };
    const convert = makeConverter(header, 'x', { decimal: 'string' });
    // The LONGTEXT is last: giving it the surplus would put 'b' into rank. Only name can take it.
    const out = convert(rec([ED, '7', 'a', 'b', '12', 'n']));
    expect(out).toEqual({ repaired: true, doc: { _id: 7, export_date: 1745712000000, id: 7, name: 'a\x01b', rank: 12, notes: 'n' } });
  });

  it('never merges into a key column, and rejects when no arrangement parses', () => {
    const header: EpfHeader = {
      columns: ['code', 'rank', 'when'], primaryKey: ['code'], dbTypes: ['VARCHAR(20)', 'INTEGER', 'DATETIME'], dataOffset: 0, extra: {},
    };
    const convert = makeConverter(header, 'x', { decimal: 'string' });
    expect(convert(rec(['a', 'b', '1', '2012 03 06']))).toEqual({ reject: expect.stringMatching(/^expected 3 fields, got 4: no arrangement/) });
    expect(convert(rec(['a', '1']))).toEqual({ reject: 'expected 3 fields, got 2' });
  });

  it('a surplus that would leave a typed column unparsable everywhere is rejected (date in the wrong place)', () => {
    const row = applicationRow('plain');
    row.splice(12, 0, 'stray'); // a surplus field before the LONGTEXT, in a typed-free stretch, after the date
    const fields = [...row.slice(0, 11), 'x', ...row.slice(11)]; // and one before the date: two surpluses
    expect(application(rec(fields))).toMatchObject({ reject: expect.stringMatching(/expected 17 fields, got 19/) });
  });
});

describe('values of the real feed', () => {
  const date = fieldConverter('DATETIME', 'string');
  const int = fieldConverter('BIGINT', 'string');

  it('parses every date form of Apple\'s EPFParser, in UTC', () => {
    expect(date('2012 03 06')).toEqual(new Date('2012-03-06T00:00:00Z'));
    expect(date('2013 02 05 13:45:07')).toEqual(new Date('2013-02-05T13:45:07Z'));
    expect(date('2012-03-06')).toEqual(new Date('2012-03-06T00:00:00Z'));
    expect(date('2011-08-17-19:13:11-Etc/GMT')).toEqual(new Date('2011-08-17T19:13:11Z'));
    expect(date('2011-08-17-19:13:11-Etc/GMT+5')).toEqual(new Date('2011-08-18T00:13:11Z')); // POSIX sign: 5 h behind UTC
    expect(date('2011-08-17-19:13:11-Etc/GMT-2')).toEqual(new Date('2011-08-17T17:13:11Z'));
    expect(date('2009')).toEqual(new Date('2009-01-01T00:00:00Z'));
  });

  it('refuses impossible and unknown date texts', () => {
    for (const bad of ['2013 02 30', '2013-13-01', '20', '12009', '2011-08-17-19:13:11-Mars/Olympus', '2011-08-17-25:00:00-Etc/GMT', 'yesterday']) {
      expect(() => date(bad), bad).toThrow(/date|time zone/);
    }
  });

  it('reads integers in square brackets, and only whole ones', () => {
    expect(int('[1234]')).toBe(1234);
    expect(int('[-7]')).toBe(-7);
    expect(String(int('[9007199254740993]'))).toBe('9007199254740993');
    for (const bad of ['[]', '[12', '12]', '[1.5]', '[[1]]']) expect(() => int(bad), bad).toThrow(/integer/);
  });
});

/** Stored values as the truth holds them: decimals as text, Longs as numbers. */
function plain(v: unknown): unknown {
  if (v instanceof mongoose.mongo.Decimal128) return v.toString();
  if (v instanceof mongoose.mongo.Long) return v.toNumber();
  if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

describe('the default fixture, imported', () => {
  it('repairs and rejects exactly the rows the generator made so, field by field against its truth', async () => {
    const { root, manifest } = await generateFixture({ dir: path.join(os.tmpdir(), 'pts-epf-fixtures') });
    const truth = fixtureTruth(manifest.spec);
    const full = truth.dates.full;
    let repairedTotal = 0;
    for (const table of ['application', 'application_detail']) {
      const file = manifest.files.find((f) => f.kind === 'full' && f.tables[0]!.table === table)!;
      const { tables } = await extractTbz({ archive: path.join(root, file.path), destDir: path.join(tmp(), table) });
      const result = await importTable({
        db: db().connection.db!, file: tables[0]!.path, table, source: `${file.folder}/${table}.tbz`, mode: 'full', exportDate: full, batchSize: 50,
      });
      // Rows whose text holds \x01, by the truth: repaired when the schema decides (application), rejected when not.
      const drop = [...truth.dropDocuments(table, full)];
      const rejects = new Set(truth.dropRejects(table, full));
      const withSeparator = drop.filter((d, i) => !rejects.has(i) && Object.values(d).some((v) => typeof v === 'string' && v.includes('\x01')));
      expect(result.rejected, table).toBe(rejects.size);
      expect(result.repaired, table).toBe(withSeparator.length);
      expect(result.rows + result.rejected).toBe(result.recordsWritten);
      repairedTotal += result.repaired;

      const stored = new Map(
        (await db().connection.db!.collection(result.collection).find({}).toArray()).map((d) => [JSON.stringify(plain(d._id)), plain(d)]),
      );
      const expected = [...truth.documents(table, full)];
      expect(stored.size).toBe(expected.length);
      for (const want of expected) expect(stored.get(JSON.stringify(want._id)), `${table} ${JSON.stringify(want._id)}`).toEqual(want);
      const rejectDocs = await db().connection.db!.collection('epf_rejects').find({ table }).sort({ record: 1 }).toArray();
      expect(rejectDocs.map((r) => r.record)).toEqual([...rejects].map((i) => i + 1));
      for (const r of rejectDocs) expect(r.reason).toMatch(/ambiguous/);
    }
    expect(repairedTotal).toBeGreaterThan(3);
  });
});

describe('header quirks of the real feed', () => {
  it("loads the v5 genre table whose header declares #primaryKey:device_type_id, keyed by genre_id, with a warning", async () => {
    const { writeEpf: write } = await import('./support/epf-files.js');
    const file = await write(tmp(), 'genre', {
      columns: ['export_date', 'genre_id', 'parent_id', 'name'],
      primaryKey: ['device_type_id'],
      dbTypes: ['BIGINT', 'INTEGER', 'INTEGER', 'VARCHAR(200)'],
      rows: [[ED, '36', '', 'App Store'], [ED, '6014', '36', 'Games']],
    });
    const result = await importTable({ db: db().connection.db!, file, table: 'genre', source: 'itunes20250427/genre.tbz', mode: 'full', exportDate: '20250427' });
    expect(result).toMatchObject({ rows: 2, rejected: 0 });
    expect(result.warnings).toEqual([expect.stringMatching(/#primaryKey:device_type_id.*using genre_id/)]);
    const docs = await db().connection.db!.collection(result.collection).find({}).sort({ _id: 1 }).toArray();
    expect(docs.map((d) => d._id)).toEqual([36, 6014]);
    // Without the override the header is refused clearly, never guessed.
    await expect(
      importTable({ db: db().connection.db!, file, table: 'genre', source: 'x', mode: 'full', exportDate: '20250427', primaryKeys: {} }),
    ).rejects.toThrow(/#primaryKey names column "device_type_id"/);
  });
});
