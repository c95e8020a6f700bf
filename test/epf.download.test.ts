/**
 * Resumable EPF download against a real HTTP server on 127.0.0.1: resume from
 * the checkpoint offset (proved by the server's own log of ranges and bytes
 * sent), MD5 continued across interruptions, restart when the file changed,
 * a `.part` longer than its checkpoint, 401, and a real SIGKILL mid-download.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NonRetryableError } from '../src/index.js';
import { downloadResumable, type DownloadCheckpoint, type DownloadOptions } from '../src/ingest/epf/transfer/download.js';
import { DownloadAuthError, TransientDownloadError } from '../src/ingest/epf/transfer/errors.js';
import { killChildrenAfterEach, makeTempDir, spawnTsChild } from './support/child.js';
import { startRangeServer, type RangeServer } from './support/range-server.js';

const SIZE = 1024 * 1024 + 12_345; // bytes; not a multiple of anything
const CHUNK = 64 * 1024; // bytes between checkpoints
/**
 * Bytes the server wrote before a drop that the client may never see: a
 * stream that errors discards what it had queued, and a reset discards the
 * socket buffers. How much depends on timing, so assertions allow it.
 */
const IN_FLIGHT = 128 * 1024;
const near = (actual: number, sentUpTo: number) => actual <= sentUpTo && actual >= sentUpTo - IN_FLIGHT;
const md5Of = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

const tmp = makeTempDir('epf-download-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
killChildrenAfterEach();

let server: RangeServer;
let content: Buffer;
let dest: string;
let saved: DownloadCheckpoint[];
let n = 0;

beforeEach(async () => {
  server = await startRangeServer();
  content = crypto.randomBytes(SIZE);
  server.setFile('application.tbz', content);
  dest = path.join(tmp, `t${++n}`, 'application.tbz');
  saved = [];
});
afterEach(() => server.stop());

function options(extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return {
    url: server.url('application.tbz'),
    dest,
    chunkCheckpointBytes: CHUNK,
    retries: 0,
    retryDelayMs: 10,
    checkpoint: async (cp) => {
      saved.push(cp);
    },
    ...extra,
  };
}

/** Calls downloadResumable until it succeeds, resuming from the last checkpoint each time. */
async function downloadWithRestarts(extra: Partial<DownloadOptions> = {}, maxCalls = 10) {
  const errors: unknown[] = [];
  for (let i = 0; i < maxCalls; i++) {
    try {
      const result = await downloadResumable(options({ resume: saved.at(-1), ...extra }));
      return { result, errors };
    } catch (err) {
      errors.push(err);
      if (!(err instanceof TransientDownloadError)) throw err;
    }
  }
  throw new Error(`no success after ${maxCalls} calls: ${errors.map(String).join('; ')}`);
}

describe('downloadResumable', () => {
  it('downloads in one go: right bytes and MD5, checkpoints on the way, no .part left', async () => {
    const progress: number[] = [];
    const r = await downloadResumable(options({ onProgress: (b) => progress.push(b) }));
    expect(r).toMatchObject({ bytes: SIZE, size: SIZE, md5: md5Of(content), restarted: false, fetchedBytes: SIZE });
    expect(r.etag).toBe('"application.tbz-v1"');
    expect(fs.readFileSync(dest).equals(content)).toBe(true);
    expect(fs.existsSync(`${dest}.part`)).toBe(false);
    const offsets = saved.map((cp) => cp.offset);
    expect(offsets.length).toBeGreaterThanOrEqual(2);
    offsets.slice(1, -1).forEach((o, i) => expect(o - offsets[i]!).toBeGreaterThanOrEqual(CHUNK));
    expect(saved.at(-1)!.offset).toBe(SIZE);
    expect(progress.at(-1)).toBe(SIZE);
  });

  it('resumes after a dropped connection from the checkpoint offset, across three drops, with the right MD5', async () => {
    server.faults.dropAfter = [300_000, 250_000, 200_000];
    const { result, errors } = await downloadWithRestarts();
    expect(errors).toHaveLength(3);
    expect(result.md5).toBe(md5Of(content));
    expect(fs.readFileSync(dest).equals(content)).toBe(true);

    const log = server.log.filter((e) => e.path === 'application.tbz');
    expect(log.map((e) => e.status)).toEqual([200, 206, 206, 206]);
    // Each resume starts where the bytes received before the drop end: nothing received is fetched twice.
    const starts = log.map((e) => e.start);
    expect(starts[0]).toBe(0);
    let sentUpTo = 0;
    [300_000, 250_000, 200_000].forEach((dropAfter, i) => {
      sentUpTo = starts[i]! + dropAfter;
      expect(near(starts[i + 1]!, sentUpTo), `resume ${i + 1} at ${starts[i + 1]} after ${sentUpTo} sent`).toBe(true);
    });
    expect(log[1]!.ifRange).toBe('"application.tbz-v1"');
    expect(server.sentFor('application.tbz')).toBeLessThanOrEqual(SIZE + 3 * IN_FLIGHT);
    expect(result.fetchedBytes).toBe(SIZE - starts[3]!);
  });

  it('retries transient failures inside one call when retries > 0 (drops and 503s)', async () => {
    server.faults.statuses = [503];
    server.faults.dropAfter = [400_000, 100_000]; // the 503 answer does not take one
    const r = await downloadResumable(options({ retries: 3 }));
    expect(r.md5).toBe(md5Of(content));
    const log = server.log.map((e) => [e.status, e.start] as const);
    expect(log.map(([status]) => status)).toEqual([503, 200, 206, 206]);
    expect(near(log[2]![1], 400_000)).toBe(true);
    expect(near(log[3]![1], log[2]![1] + 100_000)).toBe(true);
    expect(r.fetchedBytes).toBe(SIZE); // every byte kept was received once
  });

  it('gives up with a retryable TransientDownloadError after the retries, checkpoint saved', async () => {
    server.faults.dropAfter = [200_000];
    const err = await downloadResumable(options({ retries: 0 })).catch((e) => e);
    expect(err).toBeInstanceOf(TransientDownloadError);
    expect(err).not.toBeInstanceOf(NonRetryableError);
    expect(near(err.offset, 200_000)).toBe(true);
    expect(saved.at(-1)!.offset).toBe(err.offset);

    server.faults.statuses = [503, 503, 503];
    const err2 = await downloadResumable(options({ resume: saved.at(-1), retries: 2 })).catch((e) => e);
    expect(err2).toBeInstanceOf(TransientDownloadError);
    expect(err2.status).toBe(503);
    const { result } = await downloadWithRestarts();
    expect(result.md5).toBe(md5Of(content));
  });

  it('starts over from byte 0 when the ETag changed (If-Range answered 200)', async () => {
    server.faults.dropAfter = [300_000];
    await expect(downloadResumable(options())).rejects.toBeInstanceOf(TransientDownloadError);
    const changed = crypto.randomBytes(SIZE + 1000);
    server.setFile('application.tbz', changed);
    const r = await downloadResumable(options({ resume: saved.at(-1) }));
    expect(r).toMatchObject({ restarted: true, md5: md5Of(changed), size: changed.length, etag: '"application.tbz-v2"' });
    expect(r.restartReason).toMatch(/200/);
    expect(fs.readFileSync(dest).equals(changed)).toBe(true);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(server.log.at(-1)!.range ?? '')?.[1]);
    expect(server.log.at(-1)).toMatchObject({ status: 200, start: 0 });
    expect(near(resumedAt, 300_000)).toBe(true);
  });

  it('starts over when the size changed and the server sends no ETag', async () => {
    server.faults.noEtag = true;
    server.faults.dropAfter = [300_000];
    await expect(downloadResumable(options())).rejects.toBeInstanceOf(TransientDownloadError);
    const changed = crypto.randomBytes(SIZE - 1000);
    server.setFile('application.tbz', changed);
    const cp = saved.at(-1)!;
    const r = await downloadResumable(options({ resume: cp }));
    expect(r.restarted).toBe(true);
    expect(r.restartReason).toMatch(/size changed/);
    expect(r.md5).toBe(md5Of(changed));
    // The resume asks from the last checkpoint, which ends somewhere in the bytes
    // received before the drop (how many of the 300 000 sent arrived depends on timing).
    const [resume, restart] = server.log.slice(-2);
    expect([resume!.status, restart!.status, restart!.start]).toEqual([206, 200, 0]);
    expect(near(resume!.start, 300_000), `resumed at ${resume!.start}`).toBe(true);
    expect(resume!.start).toBe(cp.offset);
  });

  it('truncates a .part longer than the checkpoint (bytes written after it, then a crash)', async () => {
    server.faults.dropAfter = [300_000];
    await expect(downloadResumable(options())).rejects.toBeInstanceOf(TransientDownloadError);
    const cp = saved.at(-1)!;
    fs.appendFileSync(`${dest}.part`, Buffer.alloc(50_000, 0x55)); // unflushed tail past the checkpoint
    const r = await downloadResumable(options({ resume: cp }));
    expect(r.restarted).toBe(false);
    expect(r.md5).toBe(md5Of(content));
    expect(fs.readFileSync(dest).equals(content)).toBe(true);
    expect(server.log.at(-1)!.start).toBe(cp.offset);
  });

  it('starts over when the .part is missing or shorter than the checkpoint', async () => {
    server.faults.dropAfter = [300_000];
    await expect(downloadResumable(options())).rejects.toBeInstanceOf(TransientDownloadError);
    fs.truncateSync(`${dest}.part`, 1000);
    const r = await downloadResumable(options({ resume: saved.at(-1) }));
    expect(r).toMatchObject({ restarted: true, md5: md5Of(content), fetchedBytes: SIZE });
  });

  it('finishes without a request when the checkpoint says complete and the file is there', async () => {
    const first = await downloadResumable(options());
    const requests = server.log.length;
    const again = await downloadResumable(options({ resume: saved.at(-1) }));
    expect(again).toMatchObject({ md5: first.md5, bytes: SIZE, fetchedBytes: 0 });
    expect(server.log.length).toBe(requests);
  });

  it('treats 416 for a range starting at the end of the file as complete (checkpoint without a size)', async () => {
    server.faults.noEtag = true;
    await downloadResumable(options());
    fs.renameSync(dest, `${dest}.part`); // killed after the last checkpoint, before the rename
    const { size: _size, ...withoutSize } = saved.at(-1)!;
    const r = await downloadResumable(options({ resume: withoutSize }));
    expect(r).toMatchObject({ md5: md5Of(content), restarted: false, fetchedBytes: 0 });
    expect(server.log.at(-1)).toMatchObject({ status: 416, range: `bytes=${SIZE}-` });
  });

  it('fails at once on 401 with a non-retryable DownloadAuthError', async () => {
    await server.stop();
    server = await startRangeServer({ auth: { username: 'epf-user', password: 'not-a-real-password' } });
    server.setFile('application.tbz', content);
    const err = await downloadResumable(options({ auth: { username: 'epf-user', password: 'wrong' }, retries: 3 })).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadAuthError);
    expect(err).toBeInstanceOf(NonRetryableError);
    expect(server.log).toHaveLength(1);
    const ok = await downloadResumable(options({ auth: { username: 'epf-user', password: 'not-a-real-password' } }));
    expect(ok.md5).toBe(md5Of(content));
  });

  it('treats a stalled body (no byte for idleTimeoutMs) as a transient failure and resumes', async () => {
    // A gap 20 times the idle timeout: a busy machine may fire the timer late, never that late.
    server.faults.trickle = { bytes: 100_000, intervalMs: 6_000 };
    const err = await downloadResumable(options({ idleTimeoutMs: 300 })).catch((e) => e);
    expect(err).toBeInstanceOf(TransientDownloadError);
    expect(err.message).toMatch(/no data for 300 ms/);
    expect(saved.at(-1)!.offset).toBe(100_000);
    server.faults.trickle = undefined;
    const r = await downloadResumable(options({ resume: saved.at(-1) }));
    expect(r.md5).toBe(md5Of(content));
  });

  it('honours the AbortSignal: checkpoints what it has, then resumes from there', async () => {
    server.faults.trickle = { bytes: 16 * 1024, intervalMs: 5 };
    const ctl = new AbortController();
    const err = await downloadResumable(
      options({ signal: ctl.signal, onProgress: (b) => b > 200_000 && ctl.abort() }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    const cp = saved.at(-1)!;
    expect(cp.offset).toBeGreaterThan(200_000);
    server.faults.trickle = undefined;
    const r = await downloadResumable(options({ resume: cp }));
    expect(r.md5).toBe(md5Of(content));
    expect(server.log.at(-1)!.start).toBe(cp.offset);
  });

  it('survives a real SIGKILL mid-download: resumes in a new process, fetches at most one checkpoint interval twice', async () => {
    const big = crypto.randomBytes(3 * 1024 * 1024);
    server.setFile('big.tbz', big);
    server.faults.trickle = { bytes: 32 * 1024, intervalMs: 10 }; // ~3 MB/s
    const chunk = 256 * 1024;
    const cpFile = path.join(tmp, `cp-${n}.json`);
    const target = path.join(tmp, `t${n}`, 'big.tbz');
    const args = [server.url('big.tbz'), target, cpFile, String(chunk)];

    const first = spawnTsChild('test/fixtures/download-child.ts', args);
    await first.waitForLine('checkpoint'); // 1st
    await first.waitForLine('checkpoint'); // 2nd: kill right after it, mid-stream
    await first.kill('SIGKILL');
    const killedAt = (JSON.parse(fs.readFileSync(cpFile, 'utf8')) as DownloadCheckpoint).offset;
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(big.length);
    // Fetched twice: what the killed process had received beyond its last checkpoint (written to .part, or one read in flight).
    const partAtKill = fs.statSync(`${target}.part`).size;
    expect(partAtKill).toBeGreaterThanOrEqual(killedAt);
    expect(partAtKill - killedAt).toBeLessThanOrEqual(chunk + IN_FLIGHT);

    server.faults.trickle = { bytes: 64 * 1024, intervalMs: 2 };
    const second = spawnTsChild('test/fixtures/download-child.ts', args);
    expect(await second.waitForLine('start')).toBe(`start ${killedAt}`);
    const done = await second.waitForLine('done', 60_000);
    const result = JSON.parse(done.slice('done '.length));
    expect(result.md5).toBe(md5Of(big));
    expect(fs.readFileSync(target).equals(big)).toBe(true);

    const log = server.log.filter((e) => e.path === 'big.tbz');
    expect(log.map((e) => e.start)).toEqual([0, killedAt]);
    // The new process asked for and received exactly the rest. (The server's count for the first request is no
    // measure of what the client fetched: a trickling server queues bytes whether or not a loaded client reads them.)
    expect(log[1]!.sent).toBe(big.length - killedAt);
  });
});
