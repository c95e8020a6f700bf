/**
 * Streams an EPF `.tbz` (a bzip2-compressed tar) into one file per table.
 *
 * EPF.md "Inside a .tbz": the tar holds a folder named after the archive
 * (e.g. `itunes20130111/`) with one file per table, named without an
 * extension; importers skip names that contain a dot. We strip that folder,
 * skip directories, dotted names and anything nested deeper, and write each
 * table to `<destDir>/<table>.partial` first, renamed to `<destDir>/<table>`
 * once the entry is complete and fsynced. A re-run after a crash removes
 * leftover `.partial` files and extracts everything again (rename replaces
 * finished tables), so it always ends in a clean state.
 *
 * Decompressor (bench/bzip2.ts, 48 MiB of EPF-like text, 3.8x compression,
 * best of two interleaved rounds on a loaded 2-core machine): system
 * `bzip2 -d` decoded 26.7 MB/s vs 6.3 for unbzip2-stream (4.2x), and
 * extractTbz end to end ran 20.7 vs 6.9 MB/s (3x) with a lower peak RSS
 * (144 vs 280 MiB; bzip2 itself ~5 MiB). It also decodes in its own process,
 * off the event loop. seek-bzip and @foxglove/wasm-bz2 were no faster than
 * unbzip2-stream on that data and decode whole buffers only (unfit for
 * multi-GB files). So `'auto'` uses `bzip2` when it is on PATH, else
 * unbzip2-stream; the result says which ran.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Duplex, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import unbzip2 from 'unbzip2-stream';
import { CorruptArchiveError, EmptyArchiveError, ExtractStalledError } from './errors.js';
import { abortReason, throwIfAborted } from './http.js';

/** Which bzip2 decoder to use: `'bzip2'` = the system binary, `'js'` = unbzip2-stream, `'auto'` = bzip2 if on PATH. */
export type DecompressorChoice = 'auto' | 'bzip2' | 'js';

export interface ExtractOptions {
  /** Path of the `.tbz` file. */
  archive: string;
  /** Directory for the table files (created if missing). */
  destDir: string;
  signal?: AbortSignal;
  /** Called as compressed bytes are read, with the total read so far (bytes). */
  onProgress?: (bytesIn: number) => void;
  /** @defaultValue 'auto' */
  decompressor?: DecompressorChoice;
  /**
   * Longest time without a byte read or written before the extraction is
   * stopped with a retryable ExtractStalledError (a stuck decoder must not
   * hold a task forever), ms. @defaultValue 120000
   */
  stallMs?: number;
}

export interface ExtractedTable {
  /** Table name: the entry's file name, e.g. `application`. */
  table: string;
  /** Absolute path of the extracted file. */
  path: string;
  /** Uncompressed size in bytes. */
  bytes: number;
}

export interface ExtractResult {
  tables: ExtractedTable[];
  /** The decoder used: `'bzip2'` (system binary) or `'unbzip2-stream'`. */
  decompressor: string;
  /** Entry names not extracted (directories excluded): dotted or nested names. */
  skipped: string[];
}

const PARTIAL_SUFFIX = '.partial';

/**
 * Extracts the table files of an EPF `.tbz` into `destDir`.
 *
 * @throws CorruptArchiveError (retryable) when the bzip2 data or the tar
 *   structure is invalid or truncated; the cure is to download the file again
 * @throws the signal's reason (or CancelledError) when aborted: the bzip2
 *   child is killed, the streams are destroyed, `.partial` files stay behind
 *   and are removed by the next run
 * @throws EmptyArchiveError (non-retryable) when no entry is a table file
 *   (`<folder>/<table>`): e.g. tables nested two folders deep
 * @throws file-system errors (e.g. ENOSPC) as they are
 */
export async function extractTbz(o: ExtractOptions): Promise<ExtractResult> {
  throwIfAborted(o.signal);
  const choice = o.decompressor ?? 'auto';
  const useSystem = choice === 'bzip2' || (choice === 'auto' && (await systemBzip2Path()) !== undefined);
  await fs.mkdir(o.destDir, { recursive: true });
  await removePartials(o.destDir);

  let bytesIn = 0;
  let lastActivity = Date.now();
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytesIn += chunk.length;
      lastActivity = Date.now();
      o.onProgress?.(bytesIn);
      done(null, chunk);
    },
  });
  const stallMs = o.stallMs ?? 120_000;
  const stall = new AbortController();
  const watchdog = setInterval(() => {
    if (Date.now() - lastActivity > stallMs) stall.abort(new ExtractStalledError(o.archive, stallMs));
  }, Math.min(5_000, stallMs));
  const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
  const decoder: Decoder = useSystem ? systemBzip2() : { stream: unbzip2() as unknown as Duplex, exit: Promise.resolve(undefined) };
  const extract = tar.extract();
  const tables: ExtractedTable[] = [];
  const skipped: string[] = [];
  let writeError: unknown;

  const onAbort = () => decoder.child?.kill('SIGKILL');
  signal.addEventListener('abort', onAbort, { once: true });
  const feeding = pipeline(
    createReadStream(o.archive),
    counter,
    decoder.stream,
    extract as unknown as NodeJS.WritableStream,
    { signal },
  );
  feeding.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile

  try {
    try {
      for await (const entry of extract) {
        const table = tableName(entry.header);
        if (table === undefined) {
          if (entry.header.type !== 'directory') skipped.push(entry.header.name);
          entry.resume();
          continue;
        }
        try {
          tables.push(await writeTable(entry as AsyncIterable<Buffer>, o.destDir, table, () => (lastActivity = Date.now())));
        } catch (err) {
          // Errors of our own file writes (ENOSPC, EACCES...) are passed on as they are; anything
          // else came from the archive side (a corrupt stream, or EPIPE once bzip2 gave up on it).
          if (err instanceof DiskWriteFailure) writeError = err.cause;
          throw err instanceof DiskWriteFailure ? err.cause : err;
        }
      }
      await feeding;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(watchdog);
    }
    const status = await decoder.exit;
    if (status && (status.code !== 0 || status.signal)) {
      throw new CorruptArchiveError(o.archive, `bzip2 exited with ${status.signal ?? `code ${status.code}`}: ${status.stderr.trim()}`);
    }
  } catch (err) {
    clearInterval(watchdog);
    decoder.child?.kill('SIGKILL'); // no-op when it already exited
    if (o.signal?.aborted) throw abortReason(o.signal);
    if (stall.signal.aborted) throw stall.signal.reason as Error;
    if (err === writeError || err instanceof CorruptArchiveError) throw err;
    const status = await decoder.exit;
    const detail = status?.stderr.trim() || (err as Error)?.message || String(err);
    throw new CorruptArchiveError(o.archive, `${useSystem ? 'bzip2' : 'unbzip2-stream'}/tar: ${detail}`, { cause: err });
  }
  if (tables.length === 0) throw new EmptyArchiveError(o.archive, skipped);
  return { tables, decompressor: useSystem ? 'bzip2' : 'unbzip2-stream', skipped };
}

/** The table name of a tar entry, or undefined if it must be skipped (EPF.md "Inside a .tbz"). */
function tableName(header: tar.Header): string | undefined {
  if (header.type !== 'file' && header.type !== 'contiguous-file') return undefined;
  const parts = header.name.split('/').filter((p) => p !== '' && p !== '.');
  const name = parts.length === 1 ? parts[0] : parts.length === 2 ? parts[1] : undefined;
  if (!name || name.includes('.') || name.includes('\\')) return undefined;
  return name;
}

/**
 * Writes one entry to `<table>.partial`, fsyncs it, renames it to `<table>`.
 * The entry (a streamx stream from tar-stream) is read with `for await` and
 * written through a file handle, not piped with Node's `pipeline`, so no end
 * or close handshake between two stream implementations is waited on.
 */
async function writeTable(entry: AsyncIterable<Buffer>, destDir: string, table: string, onData: () => void): Promise<ExtractedTable> {
  const final = path.resolve(destDir, table);
  const partial = `${final}${PARTIAL_SUFFIX}`;
  let bytes = 0;
  const disk = <T>(op: Promise<T>): Promise<T> =>
    op.catch((error: unknown) => {
      throw new DiskWriteFailure(error);
    });
  const handle = await disk(fs.open(partial, 'w'));
  try {
    for await (const chunk of entry) {
      await disk(handle.write(chunk));
      bytes += chunk.length;
      onData();
    }
    await disk(handle.sync()); // the rename below must not publish unflushed bytes
  } finally {
    await handle.close();
  }
  await disk(fs.rename(partial, final));
  return { table, path: final, bytes };
}

/** Marks a failure of our own file-system writes, as opposed to the archive's. */
class DiskWriteFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('write failed', { cause });
  }
}

async function removePartials(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith(PARTIAL_SUFFIX)) await fs.rm(path.join(dir, name), { force: true });
  }
}

interface Decoder {
  stream: Duplex;
  child?: ChildProcess;
  /** The child's exit (undefined for the in-process decoder). */
  exit: Promise<ChildExit | undefined>;
}

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** `bzip2 -d` as a duplex stream: compressed bytes into stdin, tar bytes out of stdout. */
function systemBzip2(): { stream: Duplex; child: ChildProcess; exit: Promise<ChildExit> } {
  const child = spawn('bzip2', ['-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  const exit = new Promise<ChildExit>((resolve) => {
    child.once('error', (err) => resolve({ code: -1, signal: null, stderr: `cannot run bzip2: ${err.message}` }));
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { stream: Duplex.from({ writable: child.stdin!, readable: child.stdout! }), child, exit };
}

let bzip2Lookup: Promise<string | undefined> | undefined;

/** Absolute path of an executable `bzip2` on PATH, or undefined (looked up once per process). */
export function systemBzip2Path(): Promise<string | undefined> {
  bzip2Lookup ??= (async () => {
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      if (!dir) continue;
      const candidate = path.join(dir, 'bzip2');
      try {
        await fs.access(candidate, fsConstants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
    return undefined;
  })();
  return bzip2Lookup;
}
