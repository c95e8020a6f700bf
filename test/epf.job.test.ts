/**
 * The main job end to end: `pts epf` (src/cli/main.ts) as a real process against
 * the fixture feed (run by this test, so its access log outlives the kills)
 * and the test database. Faults are injected on the feed; the process is
 * SIGKILLed mid-download and mid-import; every table must end exactly as the
 * generator says, field by field.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveCollectionName } from '../src/ingest/epf/load/switch.js';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import type { EpfSummary } from '../src/ingest/epf/summary.js';
import { killChildrenAfterEach, type TsChild } from './support/child.js';
import { databasePerFile, type TestDatabase } from './support/database.js';
import { EPF_FIXTURES, runEpfJobOk, startEpfJob } from './support/epf-job.js';
import { expectTablesAsGenerated, plain, readTable } from './support/epf-tables.js';

let db: () => TestDatabase;
killChildrenAfterEach();

const DOWNLOAD_CHECKPOINT_BYTES = 8 * 1024;

/** Small batches, frequent checkpoints and 8 KiB download checkpoints, so a kill lands mid-file. */
const JOB_ENV = { EPF_BATCH_SIZE: '20', EPF_CHECKPOINT_INTERVAL_MS: '20', EPF_DOWNLOAD_CHECKPOINT_BYTES: String(DOWNLOAD_CHECKPOINT_BYTES) };
const startJob = (feed: FixtureFeed, workDir: string, env: Record<string, string> = {}, json = false): TsChild =>
  startEpfJob({ db: db(), feed, workDir }, { ...JOB_ENV, ...env }, { json });

/** Runs the job to its end and returns the summary it printed as its last line. */
const runJob = (feed: FixtureFeed, workDir: string): Promise<EpfSummary> => runEpfJobOk({ db: db(), feed, workDir }, JOB_ENV);

/** Body bytes the feed sent for archives (`.tbz`), by path. */
function archiveBytesSent(log: ReturnType<FixtureFeed['accessLog']>): Map<string, number> {
  const sent = new Map<string, number>();
  for (const e of log) {
    if (e.method === 'GET' && e.path.endsWith('.tbz')) sent.set(e.path, (sent.get(e.path) ?? 0) + e.bytes);
  }
  return sent;
}

describe('npm run epf against a faulty feed', () => {
  const ownDb = databasePerFile();
  beforeAll(() => void (db = ownDb));
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-work-'));
  beforeAll(async () => {
    feed = await startFixtureFeed({
      dir: EPF_FIXTURES,
      layout: 'v5',
      faults: {
        unavailable: { every: 9, retryAfterSeconds: 0 },
        dropConnection: { afterBytes: 1500, times: 1 },
        wrongMd5: { times: 1, match: 'application_detail.tbz.md5' },
        lateMd5: { match: /pricing\d{8}\/application_price\.tbz\.md5$/ },
      },
    });
  });
  afterAll(() => feed?.stop());

  it('ingests what is ready, waits for a late .md5, then finds nothing new', async () => {
    const first = await runJob(feed, workDir);
    expect(first.status).toBe('succeeded');
    expect(first.files.waiting).toBeGreaterThan(0); // pricing waits for its .md5
    const faults = feed.accessLog().map((e) => e.fault);
    expect(faults.filter((f) => f === 'unavailable').length).toBeGreaterThan(0);
    expect(faults.filter((f) => f === 'drop').length).toBeGreaterThan(0);
    expect(faults.filter((f) => f === 'wrong-md5').length).toBeGreaterThan(0); // caught by the MD5 check, then read again
    expect(first.tables.application_price).toBeUndefined();

    feed.publishMd5();
    const second = await runJob(feed, workDir);
    expect(second.status).toBe('succeeded');
    expect(second.files.ingested).toBeGreaterThan(0);
    expect(second.tables.application_price?.rows).toBeGreaterThan(0);

    const third = await runJob(feed, workDir);
    expect(third.nothingNew).toBe(true);
    expect(third.bytesDownloaded).toBe(0);

    await expectTablesAsGenerated(db(), feed);
  }, 600_000);
});

describe('npm run epf killed with SIGKILL mid-download and mid-import', () => {
  const ownDb = databasePerFile();
  beforeAll(() => void (db = ownDb));
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-work-'));
  const TRICKLE = 24 * 1024;
  const options = { dir: EPF_FIXTURES, layout: 'v5' as const, scale: 2, seed: 7 };
  beforeAll(async () => {
    feed = await startFixtureFeed({
      ...options,
      faults: {
        trickle: { bytesPerSecond: TRICKLE, match: 'application.tbz' },
        lateMd5: { match: '/incremental/' }, // first the full export alone
      },
    });
  });
  afterAll(() => feed?.stop());

  it('resumes without fetching finished bytes again, and readers never see a partial table', async () => {
    const fullDate = feed.truth.dates.full;
    const fullCount = feed.truth.count('application', fullDate);
    const seen = new Set<number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const name = await liveCollectionName(db().connection.db!, 'application');
        seen.add(name ? await db().connection.db!.collection(name).countDocuments() : 0);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    // 1. Killed while application.tbz trickles in.
    const a = startJob(feed, workDir);
    await a.waitForLine(/full-itunes\d+-application: download [3-9]\d%/, 120_000);
    await a.kill();
    // The feed comes back on another port (as the local fixture does, or a mirror): the resumed run follows it.
    const firstLog = feed.accessLog();
    await feed.stop();
    feed = await startFixtureFeed({ ...options, faults: { lateMd5: { match: '/incremental/' } } });
    const accessLog = () => [...firstLog, ...feed.accessLog()];
    // 2. Killed while a table is being imported.
    const b = startJob(feed, workDir);
    await b.waitForLine(/: import .*\d+ rows/, 120_000);
    await b.kill();
    // 3. Runs to the end.
    const full = await runJob(feed, workDir);
    polling = false;
    await poller;

    expect(full.status).toBe('succeeded');
    expect([...seen].every((n) => n === 0 || n === fullCount), `counts seen: ${[...seen]}`).toBe(true);
    expect(seen.has(fullCount)).toBe(true);
    await expectTablesAsGenerated(db(), feed, { upToDate: fullDate });

    // At most one re-fetched chunk per kill (plus what trickled between two checkpoint writes).
    const files = feed.manifest.files.filter((f) => f.kind === 'full');
    const sent = archiveBytesSent(accessLog());
    const total = [...sent.values()].reduce((s, n) => s + n, 0);
    const sizes = files.reduce((s, f) => s + f.size, 0);
    expect(total).toBeLessThanOrEqual(sizes + 2 * DOWNLOAD_CHECKPOINT_BYTES);
    const resumed = accessLog().filter((e) => e.path.endsWith('/application.tbz') && e.range && !e.range.startsWith('bytes=0-'));
    expect(resumed.length).toBeGreaterThan(0);

    // 4. The incrementals: exactly their rows change.
    const before = await readTable(db(), 'application');
    feed.publishMd5();
    const incs = await runJob(feed, workDir);
    expect(incs.status).toBe('succeeded');
    const after = await readTable(db(), 'application');
    const touched = new Set<string>();
    for (const date of feed.truth.dates.incrementals) {
      for (const d of feed.truth.dropDocuments('application', date)) touched.add(JSON.stringify(plain(d._id)));
    }
    expect(touched.size).toBeGreaterThan(0);
    for (const [id, doc] of before) if (!touched.has(id)) expect(after.get(id)).toEqual(doc);
    for (const id of touched) expect(after.get(id)).not.toEqual(before.get(id));
    await expectTablesAsGenerated(db(), feed);
  }, 600_000);
});
