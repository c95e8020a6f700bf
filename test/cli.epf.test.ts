/**
 * `pts epf` as a command, with real processes against the fixture feed and
 * the test database: usage errors before any download, one live run at a
 * time, a graceful SIGTERM that releases its steps, --fresh, --json purity,
 * and the retention rule (`pts epf prune`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineContainer, Ledger, MongoScheduleStore, MongoStore, Runner } from '../src/index.js';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { EPF_SCHEDULE_NAME } from '../src/ingest/epf/schedule.js';
import type { EpfSummary } from '../src/ingest/epf/summary.js';
import { killChildrenAfterEach, spawnTsChild, type TsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

killChildrenAfterEach();
const db = databasePerFile();
const FIXTURES = path.join(os.tmpdir(), 'pts-epf-fixtures');

function pts(args: string[], env: Record<string, string | undefined> = {}): TsChild {
  return spawnTsChild('src/cli/main.ts', args, { MONGODB_URI: db().uriWithDb, ...env }, { label: `pts ${args.slice(0, 2).join(' ')}` });
}

function feedEnv(feed: FixtureFeed, workDir: string): Record<string, string> {
  return {
    EPF_BASE_URL: feed.baseUrl,
    EPF_USERNAME: feed.username,
    EPF_PASSWORD: feed.password,
    EPF_WORK_DIR: workDir,
    EPF_BATCH_SIZE: '50',
    EPF_DOWNLOAD_CHECKPOINT_BYTES: '8192',
  };
}

describe('pts epf: usage', () => {
  let feed: FixtureFeed;
  beforeAll(async () => {
    feed = await startFixtureFeed({ dir: FIXTURES, layout: 'v5' });
  });
  afterAll(() => feed?.stop());

  it('--help prints usage; unknown flags and bad flag or env values are one line and exit 2, before any request to the feed', async () => {
    const help = pts(['epf', '--help']);
    expect(await help.waitForExit(60_000)).toEqual({ code: 0, signal: null });
    expect(help.lines.join('\n')).toMatch(/Usage: pts epf \[options\]/);

    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-usage-'));
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['epf', '--hourl'], {}, /unknown option '--hourl'/],
      [['epf', '--layout', 'v4'], {}, /invalid --layout "v4"/],
      [['epf'], { EPF_LAYOUT: 'v4' }, /invalid EPF_LAYOUT "v4"/],
      [['epf'], { EPF_BATCH_SIZE: 'abc' }, /invalid EPF_BATCH_SIZE "abc"/],
      [['epf', '--max-reject-fraction', '1.5'], {}, /invalid --max-reject-fraction "1.5"/],
      [['epf'], { EPF_MAX_REJECT_FRACTION: '-0.1' }, /invalid EPF_MAX_REJECT_FRACTION/],
      [['epf'], { EPF_BASE_URL: 'feeds.example.com/epf' }, /invalid EPF_BASE_URL/],
      [['epf', '--fresh'], {}, /--fresh .* pass --yes/],
    ];
    for (const [args, env, message] of cases) {
      const child = pts(args, { ...feedEnv(feed, work), ...env });
      const exit = await child.waitForExit(60_000);
      const errLines = child.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('['));
      expect(exit.code, `${args.join(' ')} ${JSON.stringify(env)}: ${child.stderr}`).toBe(2);
      expect(errLines.join('\n')).toMatch(message);
    }
    const noFeed = pts(['epf'], { EPF_BASE_URL: undefined, EPF_USERNAME: undefined, EPF_PASSWORD: undefined });
    expect((await noFeed.waitForExit(60_000)).code).toBe(2);
    expect(noFeed.stderr).toMatch(/no feed: set EPF_BASE_URL/);
    expect(feed.accessLog()).toEqual([]);
  }, 300_000);
});

describe('pts epf: one live run at a time, SIGTERM, --fresh', () => {
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-cli-'));
  beforeAll(async () => {
    feed = await startFixtureFeed({ dir: FIXTURES, layout: 'v5', faults: { trickle: { bytesPerSecond: 16 * 1024, match: 'application.tbz' } } });
  });
  afterAll(() => feed?.stop());

  it('a second run during a healthy one exits 75; SIGTERM exits 0 with its steps released; the next run resumes and finishes', async () => {
    const first = pts(['epf'], feedEnv(feed, workDir));
    const line = await first.waitForLine(/application: download \d+%/, 180_000);
    expect(line).toBeTruthy();

    const second = pts(['epf', '--json'], feedEnv(feed, workDir));
    const secondExit = await second.waitForExit(120_000);
    expect(secondExit.code, second.stderr).toBe(75);
    expect(second.stderr).toMatch(/epf-\S+ is running in another process \(pid \d+/);
    expect(second.lines).toEqual([]); // nothing on stdout, and it joined nothing
    expect(first.exitInfo).toBeUndefined();

    const stopped = await first.kill('SIGTERM');
    expect(stopped, first.stderr).toEqual({ code: 0, signal: null });
    expect(first.lines.at(-1)).toMatch(/^stopped: epf-\S+ is left for the next run \(\d+ running step\(s\) released/);
    // Released, not abandoned: no task holds a lease another runner would have to wait out.
    const store = await MongoStore.create(db().connection);
    const [container] = (await store.listContainers()).filter((c) => c.name.startsWith('epf-'));
    const snap = await store.loadSnapshot(container!.name);
    expect(snap!.tasks.filter((t) => t.state.status === 'running').map((t) => t.record.name)).toEqual([]);

    const third = pts(['epf', '--json'], feedEnv(feed, workDir));
    expect(await third.waitForExit(400_000), third.stderr).toEqual({ code: 0, signal: null });
    expect(third.stderr).toContain(`resuming ${container!.name}`);
    expect(third.lines).toHaveLength(1);
    const summary = JSON.parse(third.lines[0]!) as EpfSummary;
    expect(summary.status).toBe('succeeded');
    expect(summary.failures).toEqual([]);
    for (const t of Object.values(summary.tables)) expect(t.size).toBeGreaterThan(0);
    expect(Number.isInteger(summary.durationMs)).toBe(true);

    // --fresh --yes forgets everything: the same feed is ingested again.
    const fresh = pts(['epf', '--fresh', '--yes', '--json'], feedEnv(feed, workDir));
    expect(await fresh.waitForExit(400_000), fresh.stderr).toEqual({ code: 0, signal: null });
    expect(fresh.stderr).toMatch(/fresh start: forgot [1-9]\d* ingested file\(s\), deleted [1-9]\d* earlier run\(s\)/);
    const again = JSON.parse(fresh.lines.at(-1)!) as EpfSummary;
    expect(again.nothingNew).toBe(false);
    expect(again.files.ingested).toBe(summary.files.ingested);
  }, 900_000);
});

describe('pts epf prune', () => {
  // A database of its own: the runs of the tests above must not count here.
  const pruneDb = databasePerFile();
  const prunePts = (args: string[]) => pts(args, { MONGODB_URI: pruneDb().uriWithDb });

  it('deletes ended EPF runs, ended slot records and ledger entries past the window; keeps running ones and others', async () => {
    const connection = pruneDb().connection;
    const old = 'epf-2020-01-01T00:00:00Z';
    await (await Runner.create({ connection, container: defineContainer(old).task('a', async () => 1) })).run();
    const running = 'epf-2020-01-02T00:00:00Z';
    const store = await MongoStore.create(connection);
    await store.createContainer({ name: running, failFast: false, definition: null });
    await store.addTasks(running, [{ name: 'b', dependsOn: [] }] as never);
    await (await Runner.create({ connection, container: defineContainer('nightly-import').task('c', async () => 1) })).run();
    const ledger = await Ledger.create({ connection, name: 'epf' });
    // Recorded through a claim: its claim document is pruned with the ledger.
    await ledger.runClaimed({ url: 'https://feed.example/a.tbz', size: 1, checksum: 'x' }, async () => 'ok', { holder: old, leaseMs: 30_000 });
    // Claimed, never recorded (its work failed): the claim stays, a later claimer may need its generations.
    await expect(
      ledger.runClaimed({ url: 'https://feed.example/b.tbz', size: 1, checksum: 'y' }, async () => Promise.reject(new Error('boom')), { holder: old, leaseMs: 30_000 }),
    ).rejects.toThrow('boom');
    const claims = connection.collection('pts_ledger_claims');
    expect(await claims.countDocuments({ ledger: 'epf' })).toBe(2);
    const slots = await MongoScheduleStore.create(connection);
    const slot = new Date('2020-01-01T00:00:00Z');
    await slots.claimSlot({ schedule: EPF_SCHEDULE_NAME, slot, container: old, state: 'started', reason: null, claimedBy: 'test' });
    await slots.claimContainer(old, 'slot-of-old');
    await slots.claimContainer(running, 'slot-of-running');
    await slots.finishSlot(EPF_SCHEDULE_NAME, slot, 'succeeded');

    const dry = prunePts(['epf', 'prune', '--keep-days', '0', '--ledger-keep-days', '0', '--dry-run']);
    expect(await dry.waitForExit(60_000), dry.stderr).toEqual({ code: 0, signal: null });
    expect(dry.lines.join('\n')).toMatch(/would delete 1 run\(s\), 1 slot record\(s\), 1 ledger entry/);
    expect(await store.getContainer(old)).not.toBeNull();

    const prune = prunePts(['epf', 'prune', '--keep-days', '0', '--ledger-keep-days', '0', '--json']);
    expect(await prune.waitForExit(60_000), prune.stderr).toEqual({ code: 0, signal: null });
    const result = JSON.parse(prune.lines.at(-1)!) as { containers: string[]; slots: number; ledgerEntries: number };
    expect(result).toMatchObject({ containers: [old], slots: 1, ledgerEntries: 1, ledgerClaims: 1, containerOwners: 1 });
    expect((await claims.find({ ledger: 'epf' }).toArray()).map((c) => c.key)).toEqual([ledger.keyOf({ url: 'https://feed.example/b.tbz', size: 1, checksum: 'y' })]);
    // The deleted run's name is free again; the running one stays owned by its slot.
    expect(await slots.claimContainer(old, 'a-new-slot')).toEqual({ owner: 'a-new-slot', inserted: true });
    expect(await slots.claimContainer(running, 'a-new-slot')).toEqual({ owner: 'slot-of-running', inserted: false });
    expect(await store.getContainer(old)).toBeNull();
    expect(await store.getContainer('nightly-import')).not.toBeNull();
    expect(await slots.listSlots(EPF_SCHEDULE_NAME)).toEqual([]);
    expect(await ledger.list()).toEqual([]);

    const keep = prunePts(['epf', 'prune']); // defaults: 30 and 90 days; nothing recent to delete
    expect(await keep.waitForExit(60_000)).toEqual({ code: 0, signal: null });
    expect(keep.lines.join('\n')).toMatch(/deleted 0 run\(s\), 0 slot record\(s\), 0 ledger entries, 0 ledger claim\(s\), 0 container owner\(s\)/);
  }, 300_000);
});

describe('pts epf --hourly --log-format json', () => {
  it('writes only JSON lines, says when the next slot fires, and stops on SIGTERM with exit 0', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-hourly-'));
    const child = pts(['epf', '--hourly', '--fixture', '--log-format', 'json'], { EPF_WORK_DIR: work });
    const line = await child.waitForLine(/"event":"epf:next-slot"/, 180_000);
    const next = JSON.parse(line) as { level: string; msg: string; at: string; time: string };
    expect(next.msg).toMatch(/^hourly: next slot at \d{4}-\d\d-\d\dT\d\d:00:00\.000Z \(in /);
    expect(new Date(next.at).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(new Date(next.at).getUTCMinutes()).toBe(0);
    const exit = await child.kill('SIGTERM');
    expect(exit, child.stderr).toEqual({ code: 0, signal: null });
    const stdout = child.lines.filter((l) => l.trim() !== '');
    for (const l of stdout) expect(() => JSON.parse(l), l).not.toThrow();
    expect(JSON.parse(stdout.at(-1)!).event).toBe('epf:stopped');
    const stderr = child.stderr.split('\n').filter((l) => l.startsWith('{'));
    expect(stderr.length).toBeGreaterThan(0);
    for (const l of stderr) expect(JSON.parse(l)).toHaveProperty('level');
  }, 300_000);
});

describe('pts epf --hourly --now', () => {
  it('runs a slot at start through the scheduler, then says when the next one fires; --now without --hourly exits 2', async () => {
    const alone = pts(['epf', '--now', '--fixture']);
    expect((await alone.waitForExit(60_000)).code).toBe(2);
    expect(alone.stderr).toMatch(/--now/);

    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-now-'));
    const child = pts(['epf', '--hourly', '--now', '--fixture', '--log-format', 'json'], { EPF_WORK_DIR: work });
    const started = JSON.parse(await child.waitForLine(/"event":"epf:slot-started"/, 180_000)) as { container: string };
    expect(started.container).toMatch(/^epf-/);
    const next = JSON.parse(await child.waitForLine(/"event":"epf:next-slot"/, 180_000)) as { at: string };
    expect(new Date(next.at).getUTCMinutes()).toBe(0);
    expect(new Date(next.at).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const exit = await child.kill('SIGTERM');
    expect(exit, child.stderr).toEqual({ code: 0, signal: null });
    fs.rmSync(work, { recursive: true, force: true });
  }, 300_000);
});
