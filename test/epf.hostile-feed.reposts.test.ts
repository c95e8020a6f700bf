/**
 * Re-posted exports on a hostile feed, with the job as a real process
 * (issue 14, D and Deliver 3), for each incremental write strategy:
 * - a full export re-posted after its incrementals were applied: the
 *   incrementals are applied again over it, so none of their changed and new
 *   rows vanish (the ledger records each incremental with the full it was
 *   applied over);
 * - an older incremental re-posted after a newer one: rows the newer one
 *   changed keep the newer values, whole (`export_date` is compared on every path);
 * - under the v3 layout (one archive per group), a re-posted group full
 *   replays the group's incrementals too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile, type TestDatabase } from './support/database.js';
import { EPF_FIXTURES, runEpfJobOk } from './support/epf-job.js';
import { expectTablesAsGenerated, plain, readTable } from './support/epf-tables.js';

killChildrenAfterEach();

const runJob = (db: TestDatabase, feed: FixtureFeed, workDir: string, write: string) =>
  runEpfJobOk({ db, feed, workDir }, { EPF_BATCH_SIZE: '50', EPF_INCREMENTAL_WRITE: write });

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
    feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v5' });
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

describe('a re-posted full under the v3 layout (one archive per group)', () => {
  const db = databasePerFile();
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-reposts-v3-'));
  beforeAll(async () => {
    feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v3' });
  });
  afterAll(async () => {
    await feed?.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it("the group's incrementals are applied again over it, none of their rows vanish", async () => {
    const target = { db: db(), feed, workDir };
    const v3 = { EPF_LAYOUT: 'v3', EPF_BATCH_SIZE: '50' };
    const first = await runEpfJobOk(target, v3);
    expect(first.status).toBe('succeeded');
    await expectTablesAsGenerated(db(), feed);

    const { full, incrementals } = feed.truth.dates;
    const groupFull = feed.manifest.files.find((f) => f.kind === 'full' && f.date === full && f.path.endsWith(`/itunes${full}.tbz`));
    expect(groupFull, 'the v3 itunes full archive').toBeDefined();
    const fromIncrementals = [...feed.truth.documents('application')].filter((d) => (d.export_date as number) > Date.parse(`${full.slice(0, 4)}-${full.slice(4, 6)}-${full.slice(6)}`));
    expect(fromIncrementals.length).toBeGreaterThan(0); // rows that would vanish if the incrementals were not applied again
    await feed.repost(groupFull!.path);
    const second = await runEpfJobOk(target, v3);
    expect(second.status).toBe('succeeded');
    // The re-posted group archive and each incremental archive of its group.
    expect(second.files.ingested).toBe(1 + incrementals.length);
    await expectTablesAsGenerated(db(), feed);

    const third = await runEpfJobOk(target, v3);
    expect(third.nothingNew).toBe(true);
  }, 900_000);
});
