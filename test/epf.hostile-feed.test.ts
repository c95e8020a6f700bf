/**
 * The job as a real process against a hostile feed (issue 14, D): one bad
 * file fails that file only while the rest of the slot is ingested (an empty
 * `.md5`, a redirect loop on one archive; a GNU-format `.md5` is read), the
 * run says so and exits non-zero; a feed URL one level too high is an error,
 * never "nothing new".
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveCollectionName } from '../src/ingest/epf/load/switch.js';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { EPF_FIXTURES, runEpfJob } from './support/epf-job.js';

const db = databasePerFile();
killChildrenAfterEach();

const run = (feed: FixtureFeed, baseUrl: string, workDir: string) => runEpfJob({ db: db(), feed, workDir, baseUrl }, {}, { timeoutMs: 500_000 });

describe('npm run epf against a hostile feed', () => {
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-hostile-'));
  beforeAll(async () => {
    feed = await startFixtureFeed({
      dir: EPF_FIXTURES,
      layout: 'v5',
      faults: {
        md5Format: [
          { format: 'gnu', match: /itunes20250427\/genre\.tbz\.md5$/ },
          { format: 'empty', match: /itunes20250427\/storefront\.tbz\.md5$/ },
        ],
        redirectLoop: { match: /itunes20250427\/artist_application\.tbz$/ },
        lateMd5: { match: '/incremental/' }, // the full export alone
      },
    });
  });
  afterAll(async () => {
    await feed?.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('fails the bad files only: the others are ingested, the run names the failures and exits 1', async () => {
    const { exit, child, summary } = await run(feed, feed.baseUrl, workDir);
    expect(exit.code, child.stderr.slice(-3000)).toBe(1);
    expect(summary?.files.failed).toBe(2);
    expect(summary?.files.ingested).toBe(5); // 7 tables of the full export, 2 failed
    const out = `${child.stderr}\n${child.lines.join('\n')}`;
    expect(out).toMatch(/storefront\.tbz/);
    expect(out).toMatch(/artist_application\.tbz/);
    const conn = db().connection.db!;
    for (const table of ['application', 'application_detail', 'genre', 'application_price', 'free_application_popularity_per_genre']) {
      const live = await liveCollectionName(conn, table);
      expect(live, table).toBeDefined();
      expect(await conn.collection(live!).countDocuments({}), table).toBe(feed.truth.count(table, feed.truth.dates.full));
    }
    expect(await liveCollectionName(conn, 'storefront')).toBeUndefined();
    expect(await liveCollectionName(conn, 'artist_application')).toBeUndefined();
    expect(feed.accessLog().filter((e) => e.fault === 'redirect-loop').length).toBeLessThan(100); // gave up, no endless loop
  }, 600_000);

  it('an incremental of a table whose full was never loaded waits for it: no failure, no download, one warning', async () => {
    // storefront is absent from the full export (never loaded); its incrementals are listed.
    feed.setFaults({ missing: { match: (p) => p.includes('/storefront.tbz') && !p.includes('/incremental/') } });
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-nofull-'));
    try {
      const { exit, child, summary } = await run(feed, feed.baseUrl, work);
      expect(exit.code, child.stderr.slice(-3000)).toBe(0);
      expect(summary?.files.failed).toBe(0);
      expect(summary?.files.waiting).toBeGreaterThan(0);
      const warnings = child.stderr.split('\n').filter((l) => /storefront: incrementals skipped until a full export/.test(l));
      expect(warnings).toHaveLength(1);
      expect(feed.accessLog().filter((e) => e.method === 'GET' && e.path.endsWith('/storefront.tbz'))).toEqual([]);
      expect(await liveCollectionName(db().connection.db!, 'storefront')).toBeUndefined();
      expect(await liveCollectionName(db().connection.db!, 'application')).toBeDefined(); // the rest of the slot went on
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 600_000);

  it('a feed URL one level too high lists no EPF drops: an error, not "nothing new"', async () => {
    const tooHigh = new URL('..', feed.baseUrl).href; // .../v5/ instead of .../v5/current/
    const { exit, child } = await run(feed, tooHigh, workDir);
    expect(exit.code).not.toBe(0);
    expect(`${child.stderr}\n${child.lines.join('\n')}`).toMatch(/lists no EPF drops/);
  }, 600_000);
});
