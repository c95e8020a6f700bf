/**
 * `pts epf --join`: a second machine (its own work folder) works beside a
 * run in progress instead of exiting 75; both processes run steps of the
 * one container, and both end with its summary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import type { EpfSummary } from '../src/ingest/epf/summary.js';
import { killChildrenAfterEach, spawnTsChild, type TsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { EPF_FIXTURES, epfJobEnv } from './support/epf-job.js';

killChildrenAfterEach();
const db = databasePerFile();
let feed: FixtureFeed;
beforeAll(async () => {
  // Every archive trickles (4 KiB/s), so files are still waiting for a download slot when the second
  // run joins, however slowly its process starts (with only one slow file, the first run could be
  // left with that file's steps alone, which stay with the runner holding its bytes).
  feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v5', faults: { trickle: { bytesPerSecond: 4 * 1024, match: '.tbz' } } });
});
afterAll(() => feed?.stop());

function pts(args: string[], workDir: string): TsChild {
  return spawnTsChild('src/cli/main.ts', args, epfJobEnv({ db: db(), feed, workDir }, { EPF_BATCH_SIZE: '50', EPF_DOWNLOAD_CHECKPOINT_BYTES: '8192' }), {
    label: `pts ${args.join(' ')}`,
  });
}

it('a second run with --join works beside the run in progress, from its own work folder; both end with the summary', async () => {
  const first = pts(['epf', '--json'], fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-join-a-')));
  await expect.poll(() => first.stderr, { timeout: 180_000 }).toMatch(/: download \d+%/);

  const second = pts(['epf', '--join', '--json'], fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-join-b-')));
  await expect.poll(() => second.stderr, { timeout: 120_000 }).toMatch(/joining (epf-\S+), running in another process \(pid \d+/);
  const container = /joining (epf-\S+),/.exec(second.stderr)![1]!;

  const [a, b] = await Promise.all([first.waitForExit(600_000), second.waitForExit(600_000)]);
  expect(a, first.stderr).toEqual({ code: 0, signal: null });
  expect(b, second.stderr).toEqual({ code: 0, signal: null });
  for (const child of [first, second]) {
    const summary = JSON.parse(child.lines.at(-1)!) as EpfSummary;
    expect(summary.status).toBe('succeeded');
    expect(summary.failures).toEqual([]);
  }
  // Both processes claimed steps of the one container.
  const claims = await db()
    .connection.collection('pts_transitions')
    .find({ container, kind: 'claimed' })
    .project({ runnerId: 1 })
    .toArray();
  expect(new Set(claims.map((c) => c.runnerId)).size).toBe(2);
}, 900_000);
