import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateFixture, type FixtureManifest } from '../src/ingest/epf/fixture/generate.js';
import { fixtureTruth, type FixtureTruth, type TruthDocument } from '../src/ingest/epf/fixture/truth.js';
import { makeTempDir } from './support/side-effects.js';

/** Extract a .tbz with the system tools, independently of the code under test. */
function extract(archive: string): { dir: string; names: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'epf-x-'));
  execFileSync('sh', ['-c', 'bzip2 -dc "$1" | tar -x -C "$2"', 'x', archive, dir]);
  const names: string[] = [];
  const walk = (d: string, prefix: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      names.push(prefix + e.name + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) walk(path.join(d, e.name), `${prefix}${e.name}/`);
    }
  };
  walk(dir, '');
  return { dir, names: names.sort() };
}

interface Parsed {
  headerLines: string[];
  rows: string[][];
  trailer: string;
}

/** Split a flat file on \x02\n only (fields may hold bare \n): EPF.md flat file format. */
function parseFlat(bytes: Buffer): Parsed {
  const records = bytes.toString('utf8').split('\x02\n');
  expect(records.pop()).toBe('');
  const trailer = records.pop()!;
  const headerLines: string[] = [];
  while (records[0]?.startsWith('#')) headerLines.push(records.shift()!);
  return { headerLines, rows: records.map((r) => r.split('\x01')), trailer };
}

/**
 * Regroups a row split on every \x01 into one text per column, using the
 * truth: a value that holds k separators (the real feed's stray \x01 in free
 * text) spans k + 1 pieces.
 */
function regroup(pieces: string[], columns: string[], doc: TruthDocument): string[] {
  const out: string[] = [];
  let at = 0;
  for (const col of columns) {
    const v = doc[col];
    const k = typeof v === 'string' ? v.split('\x01').length - 1 : 0;
    out.push(pieces.slice(at, at + k + 1).join('\x01'));
    at += k + 1;
  }
  expect(at, 'pieces used').toBe(pieces.length);
  return out;
}

/** A date field's text in one of the real feed's forms, read independently of the importer and the generator. */
function dateOfText(text: string): Date {
  let m = /^(\d{4})$/.exec(text);
  if (m) return new Date(`${m[1]}-01-01T00:00:00Z`);
  m = /^(\d{4}) (\d{2}) (\d{2})$/.exec(text);
  if (m) return new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  m = /^(\d{4})-(\d{2})-(\d{2})-(\d{2}:\d{2}:\d{2})-Etc\/GMT$/.exec(text);
  if (m) return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}Z`);
  throw new Error(`not a date form of the feed: ${JSON.stringify(text)}`);
}

/** Field text as the truth document should hold it. */
function expectedText(value: unknown): string {
  if (value === null) return '';
  return String(value);
}

function checkArchives(root: string, manifest: FixtureManifest, truth: FixtureTruth) {
  const stats = { multiLine: 0, unicode: 0, empty: 0, rows: 0, separators: 0, rejects: 0, dateForms: new Set<string>(), brackets: 0 };
  for (const file of manifest.files) {
    const archive = path.join(root, file.path);
    const bytes = readFileSync(archive);
    const md5 = createHash('md5').update(bytes).digest('hex');
    expect(bytes.length).toBe(file.size);
    expect(md5).toBe(file.md5);
    expect(readFileSync(`${archive}.md5`, 'utf8')).toBe(`MD5 (${path.basename(archive)}) = ${md5}\n`);

    const { dir, names } = extract(archive);
    try {
      expect(names).toEqual([`${file.folder}/`, ...file.tables.map((t) => `${file.folder}/${t.table}`).sort()]);
      for (const { table, rows } of file.tables) {
        const schema = truth.tables.find((t) => t.table === table)!;
        const flat = readFileSync(path.join(dir, file.folder, table));
        const parsed = parseFlat(flat);
        expect(parsed.headerLines).toEqual([
          `#${schema.columns.join('\x01')}`,
          `#primaryKey:${schema.primaryKey.join('\x01')}`,
          `#dbTypes:${schema.dbTypes.join('\x01')}`,
          `#exportMode:${file.kind === 'full' ? 'FULL' : 'INCREMENTAL'}`,
          expect.stringMatching(/^##legal: /),
        ]);
        expect(parsed.trailer).toBe(`#recordsWritten:${rows}`);
        expect(parsed.rows.length).toBe(rows);
        expect(truth.dropRowCount(table, file.date)).toBe(rows);
        const expected = truth.dropDocuments(table, file.date);
        stats.rejects += truth.dropRejects(table, file.date).length;
        for (const pieces of parsed.rows) {
          const doc = expected.next().value as TruthDocument;
          const fields = regroup(pieces, schema.columns, doc);
          if (pieces.length > fields.length) stats.separators++;
          schema.columns.forEach((col, k) => {
            const want = doc[col];
            const type = schema.dbTypes[k]!;
            if (want instanceof Date) {
              expect(dateOfText(fields[k]!), `${table} ${col}`).toEqual(want);
              stats.dateForms.add(fields[k]!.length === 4 ? 'year' : fields[k]!.includes('Etc/GMT') ? 'gmt' : 'plain');
            } else if (/INT/.test(type) && fields[k]!.startsWith('[')) {
              expect(fields[k], `${table} ${col}`).toBe(`[${expectedText(want)}]`);
              stats.brackets++;
            } else {
              expect(fields[k], `${table} ${col}`).toBe(expectedText(want));
            }
          });
          stats.rows++;
          if (fields.some((f) => f.includes('\n'))) stats.multiLine++;
          if (fields.some((f) => /[^\x00-\x7f]/.test(f))) stats.unicode++;
          if (fields.some((f) => f === '')) stats.empty++;
        }
        expect(expected.next().done).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return stats;
}

describe('EPF fixture generator', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir('epf-fixture-');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('v5: one .tbz per table under <group><date>/ and incremental/current/, in the exact flat-file format, with BSD .md5 files', async () => {
    const { root, manifest, cached } = await generateFixture({ dir, layout: 'v5' });
    expect(cached).toBe(false);
    const truth = fixtureTruth(manifest.spec);
    expect(manifest.files.map((f) => f.path)).toContain('/feeds/epf/v5/current/itunes20250427/application.tbz');
    expect(manifest.files.map((f) => f.path)).toContain('/feeds/epf/v5/current/incremental/current/pricing20250430/application_price.tbz');
    expect(manifest.files).toHaveLength(7 * 3);
    expect(manifest.files.every((f) => f.tables.length === 1)).toBe(true);
    const stats = checkArchives(root, manifest, truth);
    expect(stats.multiLine).toBeGreaterThan(50);
    expect(stats.unicode).toBeGreaterThan(50);
    expect(stats.empty).toBeGreaterThan(50);
    // the real feed's quirks, at their rates: \x01 inside text, every date form, [integers], a reject or more
    expect(stats.separators).toBeGreaterThan(3);
    expect([...stats.dateForms].sort()).toEqual(['gmt', 'plain', 'year']);
    expect(stats.brackets).toBeGreaterThan(0);
    expect(stats.rejects).toBeGreaterThan(0);
    expect(stats.rejects).toBeLessThanOrEqual(0.01 * truth.dropRowCount('application_detail', '20250427'));
  });

  it('v3: one .tbz per group holding all its tables, incrementals under full/<date>/incremental/<date>/, current/ links', async () => {
    const { root, manifest } = await generateFixture({ dir, layout: 'v3' });
    const truth = fixtureTruth(manifest.spec);
    expect(manifest.files.map((f) => f.path).sort()).toEqual([
      '/feeds/epf/v3/full/20130130/incremental/20130131/itunes20130131.tbz',
      '/feeds/epf/v3/full/20130130/incremental/20130131/popularity20130131.tbz',
      '/feeds/epf/v3/full/20130130/incremental/20130131/pricing20130131.tbz',
      '/feeds/epf/v3/full/20130130/incremental/20130201/itunes20130201.tbz',
      '/feeds/epf/v3/full/20130130/incremental/20130201/popularity20130201.tbz',
      '/feeds/epf/v3/full/20130130/incremental/20130201/pricing20130201.tbz',
      '/feeds/epf/v3/full/20130130/itunes20130130.tbz',
      '/feeds/epf/v3/full/20130130/popularity20130130.tbz',
      '/feeds/epf/v3/full/20130130/pricing20130130.tbz',
    ]);
    expect(manifest.files.find((f) => f.path.endsWith('itunes20130130.tbz'))!.tables.map((t) => t.table).sort())
      .toEqual(['application', 'application_detail', 'artist_application', 'genre', 'storefront']);
    expect(realpathSync(path.join(root, 'feeds/epf/v3/full/current'))).toBe(path.join(root, 'feeds/epf/v3/full/20130130'));
    expect(realpathSync(path.join(root, 'feeds/epf/v3/full/20130130/incremental/current')))
      .toBe(path.join(root, 'feeds/epf/v3/full/20130130/incremental/20130201'));
    checkArchives(root, manifest, truth);
  });

  it('is deterministic per seed and cached per (layout, scale, seed)', async () => {
    const first = await generateFixture({ dir, layout: 'v5' });
    const again = await generateFixture({ dir, layout: 'v5' });
    expect(again.cached).toBe(true);
    expect(again.manifest).toEqual(first.manifest);
    const elsewhere = await generateFixture({ dir: path.join(dir, 'other'), layout: 'v5' });
    expect(elsewhere.cached).toBe(false);
    expect(elsewhere.manifest.files.map((f) => f.md5)).toEqual(first.manifest.files.map((f) => f.md5));
    const seed2 = await generateFixture({ dir, layout: 'v5', seed: 2, scale: 0.5 });
    expect(seed2.root).not.toBe(first.root);
    expect(statSync(path.join(seed2.root, 'manifest.json')).isFile()).toBe(true);
    expect(seed2.manifest.files[0]!.md5).not.toBe(first.manifest.files[0]!.md5);
  });

  it('truth: the full export plus incrementals that re-export some rows and add new ones', () => {
    const truth = fixtureTruth({ layout: 'v5', scale: 1, seed: 1, dates: { full: '20250427', incrementals: ['20250429', '20250430'] } });
    for (const { table, primaryKey } of truth.tables) {
      const full = [...truth.documents(table, '20250427')];
      const afterFirst = new Map([...truth.documents(table, '20250429')].map((d) => [JSON.stringify(d._id), d]));
      const final = [...truth.documents(table)];
      expect(final.length).toBe(truth.count(table));
      expect(new Set(final.map((d) => JSON.stringify(d._id))).size).toBe(final.length); // keys unique
      const inc1 = [...truth.dropDocuments(table, '20250429')];
      const added = inc1.filter((d) => !full.some((f) => JSON.stringify(f._id) === JSON.stringify(d._id)));
      expect(added.length).toBeGreaterThan(0);
      expect(inc1.length).toBeGreaterThan(added.length); // some existing rows changed
      for (const d of inc1) expect(afterFirst.get(JSON.stringify(d._id))).toEqual(d);
      for (const d of full) {
        const after = afterFirst.get(JSON.stringify(d._id))!;
        if (!inc1.some((x) => JSON.stringify(x._id) === JSON.stringify(d._id))) expect(after).toEqual(d);
      }
      // _id shape: the value for a single key, an object in key order for a compound key
      const id = final[0]!._id;
      if (primaryKey.length === 1) expect(id).toBe(final[0]![primaryKey[0]!]);
      else expect(Object.keys(id as object)).toEqual(primaryKey);
    }
    const app = truth.documents('application').next().value!;
    expect(typeof app.application_id).toBe('number');
    expect(app.itunes_release_date).toBeInstanceOf(Date);
    const price = truth.documents('application_price').next().value!;
    expect(price.retail_price).toMatch(/^\d+\.\d{3}$/);
  });
});
