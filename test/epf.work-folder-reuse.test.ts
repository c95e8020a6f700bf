/**
 * A complete download left in the work folder by a run whose import failed is
 * verified (size and MD5) and reused by the next run, not fetched again; a
 * copy that fails the check is fetched again (issue 14, Deliver 3). The failed
 * run releases its file claims, so the next one starts on them at once. Bytes are
 * counted by the feed's access log, the job runs as a real process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { EPF_FIXTURES, runEpfJob } from './support/epf-job.js';
import { expectTablesAsGenerated } from './support/epf-tables.js';

const db = databasePerFile();
killChildrenAfterEach();

/** Body bytes of GETs per archive path (`.tbz`), from `since` on in the access log. */
function archiveBytes(feed: FixtureFeed, since: number): Map<string, number> {
  const sent = new Map<string, number>();
  for (const e of feed.accessLog().slice(since)) {
    if (e.method === 'GET' && e.path.endsWith('.tbz')) sent.set(e.path, (sent.get(e.path) ?? 0) + e.bytes);
  }
  return sent;
}

describe('downloads kept in the work folder', () => {
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-reuse-'));
  beforeAll(async () => {
    feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v5' });
  });
  afterAll(async () => {
    await feed?.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('a failed import leaves its archives; the next run verifies and reuses them, and fetches a damaged one again', async () => {
    const detail = feed.manifest.files.filter((f) => f.path.endsWith('/application_detail.tbz'));
    expect(detail.map((f) => f.kind).sort()).toEqual(['full', 'incremental', 'incremental']);
    expect(feed.truth.dropRejects('application_detail', feed.truth.dates.full).length).toBeGreaterThan(0);

    // 1. No rejects allowed: application_detail's full fails at import, after every archive was downloaded.
    const first = await runEpfJob({ db: db(), feed, workDir }, { EPF_MAX_REJECT_FRACTION: '0' });
    expect(first.exit.code, first.child.stderr.slice(-3000)).toBe(1);
    expect(first.summary?.files.failed).toBeGreaterThan(0);
    const firstBytes = archiveBytes(feed, 0);
    for (const f of detail) expect(firstBytes.get(f.path), f.path).toBe(f.size); // each fetched once, whole
    const kept = fs.readdirSync(path.join(workDir, 'downloads')).filter((n) => n.endsWith('application_detail.tbz'));
    expect(kept).toHaveLength(3);

    // 2. Damage one kept copy (same size, other bytes): the check must catch it.
    const [damaged, ...intact] = [...detail].sort((a, b) => b.date.localeCompare(a.date)); // the newest incremental
    const damagedCopy = path.join(workDir, 'downloads', kept.find((n) => n.includes(damaged!.date))!);
    const bytes = fs.readFileSync(damagedCopy);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    fs.writeFileSync(damagedCopy, bytes);

    const since = feed.accessLog().length;
    const second = await runEpfJob({ db: db(), feed, workDir });
    expect(second.exit.code, second.child.stderr.slice(-3000)).toBe(0);
    // The failed run let its file claims go: the next run waited for no slot (before, it waited out the 5-minute claim lease).
    expect(second.child.stderr).not.toMatch(/is ingesting it; this slot waits/);
    const secondBytes = archiveBytes(feed, since);
    for (const f of intact) expect(secondBytes.get(f.path) ?? 0, `${f.path} fetched again`).toBe(0);
    expect(secondBytes.get(damaged!.path), `${damaged!.path} (damaged copy)`).toBe(damaged!.size);
    await expectTablesAsGenerated(db(), feed, { tables: ['application_detail'] });
  }, 600_000);
});
