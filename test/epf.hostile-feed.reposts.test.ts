/**
 * Re-posted exports on a hostile feed, with the job as a real process
 * (issue 14, D and Deliver 3), for each incremental write strategy:
 * - a full export re-posted after its incrementals were applied: the
 *   incrementals are applied again over it, so none of their changed and new
 *   rows vanish (the ledger records each incremental with the full it was
 *   applied over);
 * - an older incremental re-posted after a newer one: rows the newer one
 *   changed keep the newer values, whole (`export_date` is compared on every path).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import type { EpfSummary } from '../src/ingest/epf/summary.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile, type TestDatabase } from './support/database.js';
import { expectTablesAsGenerated, plain, readTable } from './support/epf-tables.js';

killChildrenAfterEach();
const FIXTURES = path.join(os.tmpdir(), 'pts-epf-fixtures');

async function runJob(db: TestDatabase, feed: FixtureFeed, workDir: string, write: string): Promise<EpfSummary> {
  const child = spawnTsChild('src/cli/main.ts', ['epf', '--json'], {
    MONGODB_URI: db.uriWithDb,
    EPF_BASE_URL: feed.baseUrl,
    EPF_USERNAME: feed.username,
    EPF_PASSWORD: feed.password,
    EPF_WORK_DIR: workDir,
    EPF_BATCH_SIZE: '50',
    EPF_INCREMENTAL_WRITE: write,
  });
  const exit = await child.waitForExit(400_000);
  expect(exit, `job failed:\n${child.lines.join('\n')}\n${child.stderr.slice(-4000)}`).toEqual({ code: 0, signal: null });
  return JSON.parse(child.lines.at(-1) ?? '') as EpfSummary;
}

describe.each(['auto', 'upsert', 'delete-insert'])('re-posted exports, incrementals written by %s', (write) => {
  const db = databasePerFile();
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-reposts-'));
  const archive = (kind: 'full' | 'incremental', date: string, table: string) => {
    const f = feed.manifest.files.find((x) => x.kind === kind && x.date === date && x.path.endsWith(`/${table}.tbz`));
    if (!f) throw new Error(`no ${kind} ${date} ${table}.tbz in the fixture`);
    return f.path;
  };
  beforeAll(async () => {
    feed = await startFixtureFeed({ dir: FIXTURES, layout: 'v5' });
  });
  afterAll(async () => {
    await feed?.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('a full re-posted after its incrementals: they are applied again over it, none of their rows vanish', async () => {
    const first = await runJob(db(), feed, workDir, write);
    expect(first.status).toBe('succeeded');
    await expectTablesAsGenerated(db(), feed);

    const { full } = feed.truth.dates;
    const fromIncrementals = [...feed.truth.documents('application')].filter((d) => (d.export_date as number) > Date.parse(`${full.slice(0, 4)}-${full.slice(4, 6)}-${full.slice(6)}`));
    expect(fromIncrementals.length).toBeGreaterThan(40); // the rows that vanished (issue 14: 60 at its scale)
    await feed.repost(archive('full', full, 'application'));
    await feed.repost(archive('full', full, 'application_price'));
    const second = await runJob(db(), feed, workDir, write);
    expect(second.status).toBe('succeeded');
    // Each re-posted full and the two incrementals of its table.
    expect(second.files.ingested).toBe(2 * (1 + feed.truth.dates.incrementals.length));
    await expectTablesAsGenerated(db(), feed);
    expect(second.tables.application?.size).toBe(feed.truth.count('application')); // the summary's table size

    const third = await runJob(db(), feed, workDir, write);
    expect(third.nothingNew).toBe(true); // replayed once, not every slot
  }, 600_000);

  it('an older incremental re-posted after a newer one: rows the newer one changed keep its values', async () => {
    const [older, newer] = feed.truth.dates.incrementals as [string, string];
    const changedByOlder = new Set([...feed.truth.dropDocuments('application', older)].map((d) => JSON.stringify(plain(d._id))));
    const changedByBoth = [...feed.truth.dropDocuments('application', newer)].filter((d) => changedByOlder.has(JSON.stringify(plain(d._id))));
    expect(changedByBoth.length).toBeGreaterThan(0);
    // Titles are stable in the fixture; version, description and download_size change with each export.
    const olderDocs = new Map([...feed.truth.dropDocuments('application', older)].map((d) => [JSON.stringify(plain(d._id)), d]));
    expect(changedByBoth.some((d) => olderDocs.get(JSON.stringify(plain(d._id)))?.description !== d.description)).toBe(true);

    await feed.repost(archive('incremental', older, 'application'));
    const run = await runJob(db(), feed, workDir, write);
    expect(run.status).toBe('succeeded');
    expect(run.files.ingested).toBe(1);
    const rows = await readTable(db(), 'application');
    for (const d of changedByBoth) {
      const want = plain(d) as Record<string, unknown>;
      expect(rows.get(JSON.stringify(want._id)), `row ${JSON.stringify(want._id)}`).toEqual(want);
    }
    await expectTablesAsGenerated(db(), feed);
  }, 600_000);
});
