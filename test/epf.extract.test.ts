/**
 * Extraction of EPF `.tbz` archives made here with tar-stream and the system
 * bzip2, through both decoders: folder stripped, dotted names and directories
 * skipped, corrupt or truncated archives as CorruptArchiveError, a re-run after
 * a crash ends clean, and an abort stops the work.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { extractTbz } from '../src/ingest/epf/transfer/extract.js';
import { CorruptArchiveError, EmptyArchiveError, ExtractStalledError } from '../src/ingest/epf/transfer/errors.js';
import { makeTempDir } from './support/child.js';
import { NonRetryableError } from '../src/index.js';

const tmp = makeTempDir('epf-extract-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** EPF-like rows (EPF.md: fields split by \x01, records end with \x02\n), about `bytes` long. */
function flatFile(bytes: number, seed: string): Buffer {
  const lines = ['#export_date\x01application_id\x01title\x01description\x02\n', '#primaryKey:application_id\x02\n'];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const rnd = crypto.createHash('sha1').update(`${seed}${i}`).digest('hex');
    const row = `1745712000000\x01${i}\x01App ${rnd.slice(0, 8)} ünïcode\x01line one\nline two ${rnd}\x02\n`;
    lines.push(row);
    size += row.length;
  }
  lines.push(`#recordsWritten:${lines.length - 2}\x02\n`);
  return Buffer.from(lines.join(''));
}

async function makeTbz(file: string, entries: { name: string; content?: Buffer; dir?: boolean }[]): Promise<void> {
  const pack = tar.pack();
  const done = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const e of entries) {
    if (e.dir) pack.entry({ name: e.name, type: 'directory' });
    else pack.entry({ name: e.name }, e.content!);
  }
  pack.finalize();
  const tarBytes = await done;
  const bz = spawnSync('bzip2', ['-c', '-9'], { input: tarBytes, maxBuffer: 1 << 30 });
  if (bz.status !== 0) throw new Error(`bzip2 failed: ${bz.stderr}`);
  fs.writeFileSync(file, bz.stdout);
}

const application = flatFile(2_500_000, 'a'); // > 900 kB: several bzip2 blocks
const genre = flatFile(5_000, 'g');
const archive = path.join(tmp, 'itunes20250427.tbz');
const ready = makeTbz(archive, [
  { name: 'itunes20250427/', dir: true },
  { name: 'itunes20250427/application', content: application },
  { name: 'itunes20250427/genre', content: genre },
  { name: 'itunes20250427/README.txt', content: Buffer.from('not a table') },
  { name: 'itunes20250427/._genre', content: Buffer.from('mac resource fork') },
  { name: 'itunes20250427/nested/deeper', content: Buffer.from('not flat') },
]);

let n = 0;
const freshDir = () => path.join(tmp, `out${++n}`);

describe.each(['bzip2', 'js'] as const)('extractTbz with decompressor %s', (decompressor) => {
  it('writes one file per table, folder stripped, dotted and nested names skipped', async () => {
    await ready;
    const destDir = freshDir();
    const progress: number[] = [];
    const r = await extractTbz({ archive, destDir, decompressor, onProgress: (b) => progress.push(b) });
    expect(r.decompressor).toBe(decompressor === 'bzip2' ? 'bzip2' : 'unbzip2-stream');
    expect(r.tables.map((t) => [t.table, t.bytes])).toEqual([
      ['application', application.length],
      ['genre', genre.length],
    ]);
    expect(r.skipped.sort()).toEqual(['itunes20250427/._genre', 'itunes20250427/README.txt', 'itunes20250427/nested/deeper']);
    expect(fs.readdirSync(destDir).sort()).toEqual(['application', 'genre']);
    expect(fs.readFileSync(path.join(destDir, 'application')).equals(application)).toBe(true);
    expect(fs.readFileSync(path.join(destDir, 'genre')).equals(genre)).toBe(true);
    expect(progress.at(-1)).toBe(fs.statSync(archive).size);
  });

  it('fails with a non-retryable EmptyArchiveError when the tables sit two folders deep (nothing to import is not success)', async () => {
    const nested = path.join(tmp, `nested-${decompressor}.tbz`);
    await makeTbz(nested, [
      { name: 'itunes20250427/', dir: true },
      { name: 'itunes20250427/itunes20250427/', dir: true },
      { name: 'itunes20250427/itunes20250427/application', content: application },
    ]);
    const err = await extractTbz({ archive: nested, destDir: freshDir(), decompressor }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmptyArchiveError);
    expect(err).toBeInstanceOf(NonRetryableError);
    expect((err as Error).message).toContain('itunes20250427/itunes20250427/application');
  });

  it('reports a corrupted archive as CorruptArchiveError', async () => {
    await ready;
    const bytes = fs.readFileSync(archive);
    for (let i = 0; i < 64; i++) {
      const at = Math.floor(bytes.length / 2) + i * 7;
      bytes[at] = bytes[at]! ^ 0xa5;
    }
    const bad = path.join(tmp, `corrupt-${decompressor}.tbz`);
    fs.writeFileSync(bad, bytes);
    const err = await extractTbz({ archive: bad, destDir: freshDir(), decompressor }).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptArchiveError);
    expect(err.message).toContain(bad);
  });

  it('reports a truncated archive as CorruptArchiveError', async () => {
    await ready;
    const bytes = fs.readFileSync(archive);
    const cut = path.join(tmp, `truncated-${decompressor}.tbz`);
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await expect(extractTbz({ archive: cut, destDir: freshDir(), decompressor })).rejects.toBeInstanceOf(CorruptArchiveError);
  });

  it('reports a file that is not bzip2 at all as CorruptArchiveError', async () => {
    const junk = path.join(tmp, `junk-${decompressor}.tbz`);
    fs.writeFileSync(junk, '<html>401 Authorization Required</html>');
    await expect(extractTbz({ archive: junk, destDir: freshDir(), decompressor })).rejects.toBeInstanceOf(CorruptArchiveError);
  });

  it('re-running after a crash starts over cleanly: leftover .partial removed, tables replaced', async () => {
    await ready;
    const destDir = freshDir();
    fs.mkdirSync(destDir);
    fs.writeFileSync(path.join(destDir, 'application.partial'), 'half-written by a killed run');
    fs.writeFileSync(path.join(destDir, 'genre'), 'stale');
    const r = await extractTbz({ archive, destDir, decompressor });
    expect(r.tables).toHaveLength(2);
    expect(fs.readdirSync(destDir).sort()).toEqual(['application', 'genre']);
    expect(fs.readFileSync(path.join(destDir, 'genre')).equals(genre)).toBe(true);
  });

  it('stops when aborted', async () => {
    await ready;
    const ctl = new AbortController();
    const reason = new Error('stop now');
    const err = await extractTbz({
      archive,
      destDir: freshDir(),
      decompressor,
      signal: ctl.signal,
      onProgress: (b) => b > 100_000 && ctl.abort(reason),
    }).catch((e) => e);
    expect(err).toBe(reason);
  });
});

it("'auto' uses the system bzip2 when it is on PATH", async () => {
  await ready;
  const r = await extractTbz({ archive, destDir: freshDir() });
  expect(r.decompressor).toBe('bzip2');
});

it('stops a stalled extraction with a retryable ExtractStalledError instead of hanging', async () => {
  // A FIFO nobody writes to: the archive never yields a byte.
  const fifo = path.join(tmp, `stalled-${++n}.tbz`);
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const keepOpen = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK); // so the reader's open does not block
  try {
    const err = await extractTbz({ archive: fifo, destDir: freshDir(), stallMs: 300 }).catch((e) => e);
    expect(err).toBeInstanceOf(ExtractStalledError);
    expect(err).toMatchObject({ code: 'EPF_EXTRACT_STALLED', stallMs: 300 });
  } finally {
    fs.closeSync(keepOpen);
  }
});
