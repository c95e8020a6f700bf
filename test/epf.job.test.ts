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
import { MongoStore } from '../src/store/mongo/mongo-store.js';
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

/**
 * Bytes a killed download may have received past its last checkpoint: the
 * checkpoint interval plus one read in flight (a stream's chunk, well under this).
 */
const PAST_CHECKPOINT = DOWNLOAD_CHECKPOINT_BYTES + 128 * 1024;

/**
 * Sizes of the `.part` files a killed run left in the work folder, by `<drop folder>-<archive>`
 * (a file's id is `<kind>-<drop folder>-<table>`, see archivePath).
 */
function partSizes(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  const downloads = path.join(dir, 'downloads');
  for (const name of fs.existsSync(downloads) ? fs.readdirSync(downloads) : []) {
    if (name.endsWith('.tbz.part')) sizes.set(name.slice(0, -'.part'.length).replace(/^[a-z]+-/, ''), fs.statSync(path.join(downloads, name)).size);
  }
  return sizes;
}

/**
 * The byte offsets the job's download tasks had checkpointed, by `<drop folder>-<archive>`
 * (read from the database, as a resumed run reads them).
 */
async function downloadCheckpoints(): Promise<Map<string, number>> {
  const store = await MongoStore.create(db().connection, { ensureIndexes: false });
  const offsets = new Map<string, number>();
  const { containers } = await store.listContainerPage({ limit: 50, namePrefix: 'epf-' });
  for (const c of containers) {
    for (const t of (await store.loadSnapshot(c.name))?.tasks ?? []) {
      const offset = (t.state.checkpoint as { offset?: number } | null | undefined)?.offset;
      if (t.record.name.startsWith('download:') && typeof offset === 'number') {
        offsets.set(`${t.record.name.slice('download:'.length).replace(/^[a-z]+-/, '')}.tbz`, offset);
      }
    }
  }
  return offsets;
}

/** The first archive GET of each file in a run's part of the access log, by `<drop folder>-<archive>`. */
function firstArchiveGets(log: ReturnType<FixtureFeed['accessLog']>): Map<string, { start: number; bytes: number }> {
  const first = new Map<string, { start: number; bytes: number }>();
  for (const e of log) {
    if (e.method !== 'GET' || !e.path.endsWith('.tbz')) continue;
    const name = `${path.basename(path.dirname(e.path))}-${path.basename(e.path)}`;
    if (!first.has(name)) first.set(name, { start: e.range ? Number(/^bytes=(\d+)-/.exec(e.range)?.[1] ?? 0) : 0, bytes: e.bytes });
  }
  return first;
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
    const partsAfterA = partSizes(workDir);
    const checkpointsAfterA = await downloadCheckpoints();
    // The feed comes back on another port (as the local fixture does, or a mirror): the resumed run follows it.
    const firstLog = feed.accessLog();
    await feed.stop();
    feed = await startFixtureFeed({ ...options, faults: { lateMd5: { match: '/incremental/' } } });
    const accessLog = () => [...firstLog, ...feed.accessLog()];
    // 2. Killed while a table is being imported.
    const b = startJob(feed, workDir);
    await b.waitForLine(/: import .*\d+ rows/, 120_000);
    await b.kill();
    const partsAfterB = partSizes(workDir);
    const checkpointsAfterB = await downloadCheckpoints();
    const runB = feed.accessLog();
    // 3. Runs to the end.
    const full = await runJob(feed, workDir);
    const runC = feed.accessLog().slice(runB.length);
    polling = false;
    await poller;

    expect(full.status).toBe('succeeded');
    expect([...seen].every((n) => n === 0 || n === fullCount), `counts seen: ${[...seen]}`).toBe(true);
    expect(seen.has(fullCount)).toBe(true);
    await expectTablesAsGenerated(db(), feed, { upToDate: fullDate });

    // No finished byte fetched again: after each kill, a file's first request starts at the offset the killed
    // run had checkpointed, at most one checkpoint interval and one read behind what its .part held. Measured
    // on the client: the feed's byte counts include what it queued for a killed client that never read it.
    expect(partsAfterA.size).toBeGreaterThan(0);
    let resumedAfterKill = 0;
    for (const [parts, checkpoints, run] of [[partsAfterA, checkpointsAfterA, runB], [partsAfterB, checkpointsAfterB, runC]] as const) {
      for (const [name, get] of firstArchiveGets(run)) {
        const part = parts.get(name);
        const checkpoint = checkpoints.get(name) ?? 0;
        if (part === undefined) {
          expect(get.start, `${name} resumed at ${get.start} without a .part`).toBe(0);
          continue;
        }
        if (get.start > 0) resumedAfterKill++;
        expect(get.start, `${name}: first request after the kill`).toBe(checkpoint);
        expect(part - get.start, `${name}: bytes fetched again`).toBeLessThanOrEqual(PAST_CHECKPOINT);
      }
    }
    expect(resumedAfterKill).toBeGreaterThan(0);
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
