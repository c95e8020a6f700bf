/**
 * A file whose steps ran on two machines and then failed for good: runner A
 * (a process of its own, with its own work folder) downloads it and is
 * SIGKILLed as its next step starts; `pts epf` on machine B resumes the slot,
 * has none of A's bytes, and the feed no longer serves the file (404), so the
 * file's step fails for good on B. The file must not be recorded as
 * ingested, its claim must be released when B's run ends (releaseSlotClaims),
 * and the next run must ingest it exactly, without waiting for the claim.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Ledger } from '../src/index.js';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import type { EpfSummary } from '../src/ingest/epf/summary.js';
import { killChildrenAfterEach, makeTempDir, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf } from './support/engine.js';
import { EPF_FIXTURES, runEpfJob } from './support/epf-job.js';
import { expectTablesAsGenerated } from './support/epf-tables.js';

const db = databasePerFile();
killChildrenAfterEach();

let feed: FixtureFeed;
beforeAll(async () => {
  feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v5' });
});
afterAll(() => feed?.stop());

const workDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `pts-epf-failed-${name}-`));

it('download on runner A, A SIGKILLed, the next step fails for good on machine B: not recorded, claim released, the next run ingests it exactly', async () => {
  const dir = makeTempDir();
  const container = 'epf-2026-12-06T13:00Z';
  const a = spawnTsChild('test/fixtures/epf-runner-child.ts', [], {
    MONGODB_URI: db().uriWithDb,
    BASE_URL: feed.baseUrl,
    USERNAME: feed.username,
    PASSWORD: feed.password,
    WORK_DIR: workDir('a'),
    RUNNER: 'A',
    CONTAINER: container,
    LOG: path.join(dir, 'effects.jsonl'),
  });
  // A's first file whose download is done: its extract starts on A, which dies at once.
  const line = await a.waitForLine(/^started extract:/, 300_000);
  await a.kill('SIGKILL');
  const fileId = line.split(' ')[1]!.slice('extract:'.length);
  const file = feed.manifest.files.find((f) => fileId.endsWith(`-${f.group}${f.date}-${path.basename(f.path, '.tbz')}`))!;
  expect(file, fileId).toBeDefined();
  const downloaded = (await snapshotOf(db().connection, container)).tasks.find((t) => t.record.name === `download:${fileId}`)!;
  expect([downloaded.state.status, downloaded.state.runnerId]).toEqual(['succeeded', 'A']);

  // Machine B: `pts epf` resumes the slot from a work folder of its own; the feed no longer serves the file.
  feed.setFaults({ missing: { match: file.path } });
  const b = await runEpfJob({ db: db(), feed, workDir: workDir('b') }, { EPF_BATCH_SIZE: '50' });
  expect(b.exit, b.child.stderr.slice(-4000)).toEqual({ code: 1, signal: null });
  expect(b.child.stderr).toContain(`resuming ${container}`);
  expect(b.summary).toMatchObject({ container, status: 'failed' });
  const failure = b.summary!.failures.find((f) => f.task.endsWith(`:${fileId}`));
  expect(failure, JSON.stringify(b.summary!.failures)).toBeDefined();
  expect(failure!.error).toMatch(/404/);
  const failedStep = (await snapshotOf(db().connection, container)).tasks.find((t) => t.record.name === failure!.task)!;
  expect(failedStep.state.status).toBe('failed');
  expect(failedStep.state.runnerId).not.toBe('A'); // it ran, and failed, on B
  console.log(`failed across machines: download:${fileId} on A, ${failure!.task} failed on B (${failure!.error})`);

  // Not recorded; the slot's claim on it released (the next run need not wait out its lease).
  const ledger = await Ledger.create({ connection: db().connection, name: 'epf' });
  expect((await ledger.list()).map((e) => e.url)).not.toContain(expect.stringContaining(file.path));
  const claims = await db().connection.collection('pts_ledger_claims').find({ ledger: 'epf', holder: container }).toArray();
  expect(claims.length).toBeGreaterThan(0);
  expect(claims.filter((c) => !c.released)).toEqual([]);

  // The next run (the feed serves the file again) ingests it, at once and exactly.
  feed.setFaults({});
  const c = await runEpfJob({ db: db(), feed, workDir: workDir('c') }, { EPF_BATCH_SIZE: '50' });
  expect(c.exit, c.child.stderr.slice(-4000)).toEqual({ code: 0, signal: null });
  const summary = c.summary as EpfSummary;
  expect(summary.container).not.toBe(container);
  expect(summary.files.ingested).toBeGreaterThanOrEqual(1);
  expect(c.child.stderr).not.toMatch(/is ingesting it; this slot waits/);
  await expectTablesAsGenerated(db(), feed);
  const urls = (await ledger.list()).map((e) => e.url);
  expect(new Set(urls).size).toBe(urls.length);
  expect(urls.length).toBe(feed.manifest.files.length);
  expect(urls.filter((u) => u.endsWith(file.path))).toHaveLength(1);
}, 900_000);
