/**
 * EPF v3 (one archive per group, every table of the group inside): an
 * incremental archive holding a table that was never fully loaded skips that
 * table with one warning and applies the others; it does not fail the file,
 * as Apple's importer skips such tables too (issue 14).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { liveCollectionName, pointerCollectionName } from '../src/ingest/epf/load/switch.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { EPF_FIXTURES, runEpfJob } from './support/epf-job.js';

const db = databasePerFile();
killChildrenAfterEach();

const run = (feed: FixtureFeed, workDir: string) => runEpfJob({ db: db(), feed, workDir }, { EPF_LAYOUT: 'v3' }, { timeoutMs: 500_000 });

describe('npm run epf on a v3 feed', () => {
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-v3-'));
  beforeAll(async () => {
    // The full exports alone first: the incrementals' .md5 files are not published yet.
    feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v3', faults: { lateMd5: { match: '/incremental/' } } });
  });
  afterAll(async () => {
    await feed?.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('an incremental group archive with a never-loaded table skips that table with a warning and applies the rest', async () => {
    const first = await run(feed, workDir);
    expect(first.exit.code, first.child.stderr.slice(-3000)).toBe(0);
    const conn = db().connection;
    const live = await liveCollectionName(conn.db!, 'storefront');
    expect(live).toBeDefined();
    // storefront was never loaded: no pointer, no collection.
    await conn.collection(pointerCollectionName()).deleteOne({ _id: 'storefront' as never });
    await conn.db!.dropCollection(live!);
    expect(await liveCollectionName(conn.db!, 'storefront')).toBeUndefined();
    const application = (await liveCollectionName(conn.db!, 'application'))!;
    const before = await conn.collection(application).countDocuments();

    feed.setFaults({}); // the incrementals are ready
    const second = await run(feed, workDir);
    expect(second.exit.code, second.child.stderr.slice(-3000)).toBe(0);
    expect(second.summary?.files.failed).toBe(0);
    expect(second.summary?.files.ingested).toBeGreaterThan(0);
    const warnings = second.child.stderr.split('\n').filter((l) => /storefront: incremental rows skipped, the table was never fully loaded/.test(l));
    expect(warnings.length).toBeGreaterThan(0);
    expect(await liveCollectionName(conn.db!, 'storefront')).toBeUndefined();
    // The other tables of the same archives were applied: the incrementals add applications.
    // (On FerretDB an incremental builds a new generation of the table: read the live name again.)
    expect(await conn.collection((await liveCollectionName(conn.db!, 'application'))!).countDocuments()).toBeGreaterThan(before);
  }, 900_000);
});
