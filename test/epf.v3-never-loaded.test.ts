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
import type { EpfSummary } from '../src/ingest/epf/summary.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();
const FIXTURES = path.join(os.tmpdir(), 'pts-epf-fixtures');

async function run(feed: FixtureFeed, workDir: string) {
  const child = spawnTsChild('src/cli/main.ts', ['epf', '--json'], {
    MONGODB_URI: db().uriWithDb,
    EPF_BASE_URL: feed.baseUrl,
    EPF_USERNAME: feed.username,
    EPF_PASSWORD: feed.password,
    EPF_WORK_DIR: workDir,
    EPF_LAYOUT: 'v3',
    EPF_BATCH_SIZE: '200',
  });
  const exit = await child.waitForExit(500_000);
  let summary: EpfSummary | undefined;
  try {
    summary = JSON.parse(child.lines.at(-1) ?? '') as EpfSummary;
  } catch {
    summary = undefined;
  }
  return { exit, child, summary };
}

describe('npm run epf on a v3 feed', () => {
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-v3-'));
  beforeAll(async () => {
    // The full exports alone first: the incrementals' .md5 files are not published yet.
    feed = await startFixtureFeed({ dir: FIXTURES, layout: 'v3', faults: { lateMd5: { match: '/incremental/' } } });
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
