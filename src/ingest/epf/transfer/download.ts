/**
 * Resumable HTTP download of one EPF file, with the MD5 computed while the
 * bytes stream past (the file is never read twice).
 *
 * Durability invariant: a checkpoint `{ offset, md5State }` is handed to the
 * caller only after the bytes `[0, offset)` are written to `<dest>.part` and
 * `fdatasync`ed. After a SIGKILL the `.part` file may hold more bytes than the
 * last checkpoint; a resume truncates it back to the checkpoint offset and
 * reloads the saved hash state, so hash and file always cover the same bytes.
 *
 * Retries: transient failures (connection reset mid-body, 408/429/5xx, no data
 * for `idleTimeoutMs`) are retried inside this call `retries` times with
 * exponential backoff (each retry resumes with `Range`); after that a
 * retryable `TransientDownloadError` is thrown, the last checkpoint already
 * saved, so the engine's task retry resumes from it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { createMD5, type IHasher } from 'hash-wasm';
import { DownloadAuthError, DownloadHttpError, TransientDownloadError } from './errors.js';
import { fetchWithinOrigin, RedirectLoopError } from './origin-fetch.js';
import {
  abortReason,
  backoffMs,
  describe,
  numberOrUndefined,
  parseContentRange,
  retryAfterMs,
  sleep,
  throwIfAborted,
} from './http.js';

/** What must be persisted to resume a download (e.g. with `ctx.checkpoint`). */
export interface DownloadCheckpoint {
  /** Bytes of the file durably on disk in `<dest>.part`. */
  offset: number;
  /** Total size of the remote file in bytes, when the server said. */
  size?: number;
  /** The remote file's ETag, when the server sent one. */
  etag?: string;
  /** base64 of hash-wasm's MD5 `save()` state after `offset` bytes. */
  md5State: string;
}

export interface DownloadOptions {
  url: string;
  /** Final path; bytes go to `<dest>.part` and are renamed here when complete. */
  dest: string;
  /** HTTP Basic credentials (EPF.md: the feed sits behind Basic auth), sent to `feedOrigin` only. */
  auth?: { username: string; password: string };
  /** The only origin that gets `auth`, on every request and redirect. @defaultValue the origin of `url` */
  feedOrigin?: string;
  /** The last checkpoint of an earlier attempt, to resume from. */
  resume?: DownloadCheckpoint;
  /** Persists a checkpoint; called after the bytes it covers are flushed to disk. */
  checkpoint: (cp: DownloadCheckpoint) => Promise<void>;
  /** Called after every received chunk with bytes in the file so far and the total, if known. */
  onProgress?: (bytes: number, total?: number) => void;
  signal?: AbortSignal;
  /** Bytes between checkpoints. @defaultValue 8 MiB */
  chunkCheckpointBytes?: number;
  /** Transient failures retried inside this call before throwing. @defaultValue 3 */
  retries?: number;
  /** First retry delay in ms, doubled per retry (max 30 s); a `Retry-After` header wins. @defaultValue 1000 */
  retryDelayMs?: number;
  /** A request with no byte received for this long (ms) is a transient failure. @defaultValue 60000 */
  idleTimeoutMs?: number;
  fetch?: typeof fetch;
}

export interface DownloadResult {
  /** Bytes in the finished file. */
  bytes: number;
  /** Size of the remote file in bytes (equals `bytes`). */
  size: number;
  /** MD5 of the file, 32 lowercase hex characters. */
  md5: string;
  etag?: string;
  /** True when a resume had to start over from byte 0 (see `restartReason`). */
  restarted: boolean;
  restartReason?: string;
  /** Body bytes actually received by this call (all requests, retries included). */
  fetchedBytes: number;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;
const MAX_RESTARTS = 3;

/**
 * Downloads `url` to `dest`, resuming from `resume` when given.
 *
 * A file that changed on the server since the checkpoint (different ETag, a
 * different total in `Content-Range`, a `200` answer to a `Range` request, or
 * `416`) is started over from byte 0 and reported with `restarted: true`. So
 * is a `.part` file shorter than the checkpoint offset.
 *
 * @throws DownloadAuthError on 401/403 (non-retryable)
 * @throws DownloadHttpError on 404 and other non-retryable statuses
 * @throws TransientDownloadError after `retries` transient failures (retryable)
 * @throws the signal's reason (or CancelledError) when aborted; the bytes on
 *   disk are checkpointed first when the caller's checkpoint still accepts it
 */
export async function downloadResumable(o: DownloadOptions): Promise<DownloadResult> {
  const chunkBytes = o.chunkCheckpointBytes ?? DEFAULT_CHUNK;
  const retries = o.retries ?? 3;
  const doFetch = o.fetch ?? globalThis.fetch;
  const part = `${o.dest}.part`;
  const md5 = await createMD5();

  let offset = 0;
  let size: number | undefined;
  let etag: string | undefined;
  let restartReason: string | undefined;
  let fetchedBytes = 0;

  const resume = o.resume && o.resume.offset > 0 ? o.resume : undefined;
  if (resume) {
    const partSize = await fileSize(part);
    if (partSize === undefined && resume.offset === resume.size && (await fileSize(o.dest)) === resume.offset) {
      // Finished and renamed before the caller recorded success: nothing to fetch.
      md5.load(fromBase64(resume.md5State));
      return { bytes: resume.offset, size: resume.offset, md5: md5.digest('hex'), etag: resume.etag, restarted: false, fetchedBytes: 0 };
    }
    if (partSize === undefined || partSize < resume.offset) {
      restartReason = `${part} holds ${partSize ?? 'no'} bytes, fewer than the checkpoint's ${resume.offset}`;
    } else if (!loadState(md5, resume.md5State)) {
      restartReason = 'the checkpoint has an unreadable MD5 state';
    } else {
      ({ offset, size, etag } = resume);
    }
  }

  await fs.mkdir(path.dirname(o.dest), { recursive: true });
  const fh = await fs.open(part, offset > 0 ? 'r+' : 'w');
  let lastCheckpoint = offset;
  try {
    if (offset > 0) await fh.truncate(offset); // drop bytes written after the last checkpoint

    const saveCheckpoint = async () => {
      if (offset === lastCheckpoint) return;
      await fh.datasync();
      await o.checkpoint({ offset, size, etag, md5State: toBase64(md5.save()) });
      lastCheckpoint = offset;
    };
    const startOver = async (reason: string) => {
      restartReason = reason;
      md5.init();
      offset = 0;
      size = undefined;
      etag = undefined;
      await fh.truncate(0);
      await o.checkpoint({ offset: 0, md5State: toBase64(md5.save()) });
      lastCheckpoint = 0;
    };
    if (restartReason && resume) await o.checkpoint({ offset: 0, md5State: toBase64(md5.save()) });

    let failures = 0;
    let restarts = 0;
    while (size === undefined || offset < size) {
      throwIfAborted(o.signal);
      const outcome = await requestOnce({
        o, doFetch, offset, etag, size,
        onResponse: async (info) => {
          if (info.restart) {
            if (++restarts > MAX_RESTARTS) throw new TransientDownloadError(o.url, offset, `file changed ${restarts} times: ${info.restart}`);
            await startOver(info.restart);
          }
          if (info.size !== undefined) size = info.size;
          if (info.etag !== undefined) etag = info.etag;
        },
        onChunk: async (bytes) => {
          let written = 0;
          while (written < bytes.length) {
            written += (await fh.write(bytes, written, bytes.length - written, offset + written)).bytesWritten;
          }
          md5.update(bytes);
          offset += bytes.length;
          fetchedBytes += bytes.length;
          failures = 0;
          o.onProgress?.(offset, size);
          if (offset - lastCheckpoint >= chunkBytes) await saveCheckpoint();
        },
      }).catch(async (err: unknown) => {
        if (o.signal?.aborted) {
          await saveCheckpoint().catch(() => undefined); // e.g. a lost lease rejects the write
          throw abortReason(o.signal);
        }
        if (!(err instanceof TransientDownloadError)) throw err;
        return err as Transient;
      });
      if (outcome === 'again') continue;
      const failure: Transient | undefined =
        outcome === 'done' && size !== undefined && offset < size
          ? new TransientDownloadError(o.url, offset, `body ended at byte ${offset} of ${size}`)
          : outcome === 'done' ? undefined : outcome;
      if (failure) {
        await saveCheckpoint();
        if (++failures > retries) {
          throw new TransientDownloadError(o.url, lastCheckpoint, `${failure.message} (after ${retries} retries)`, failure.status, { cause: failure });
        }
        await sleep(backoffMs(o.retryDelayMs ?? 1000, failures, failure.retryAfterMs), o.signal);
        continue;
      }
      // Body ended normally.
      if (size === undefined) size = offset; // no Content-Length: the end of the body is the end
      if (offset > size) await startOver(`received ${offset} bytes, more than the announced ${size}`);
    }
    await fh.sync();
    await saveCheckpoint();
  } finally {
    await fh.close();
  }
  await fs.rename(part, o.dest);
  await syncDir(path.dirname(o.dest));
  return {
    bytes: offset,
    size: offset,
    md5: md5.digest('hex'),
    etag,
    restarted: restartReason !== undefined,
    ...(restartReason !== undefined ? { restartReason } : {}),
    fetchedBytes,
  };
}

interface ResponseInfo {
  size?: number;
  etag?: string;
  /** Set when the bytes so far must be dropped: the body that follows starts at byte 0. */
  restart?: string;
}

interface RequestContext {
  o: DownloadOptions;
  doFetch: typeof fetch;
  offset: number;
  etag?: string;
  size?: number;
  onResponse: (info: ResponseInfo) => Promise<void>;
  onChunk: (bytes: Uint8Array) => Promise<void>;
}

/** Transient error carrying the server's Retry-After, if any. */
type Transient = TransientDownloadError & { retryAfterMs?: number };

/**
 * One GET. Resolves `'done'` when the body ended, `'again'` when a new request
 * must be made (e.g. after a restart decided on a 206 or 416), and throws a
 * TransientDownloadError for failures worth retrying.
 */
async function requestOnce(c: RequestContext): Promise<'done' | 'again'> {
  const { o, offset } = c;
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
  const authorization = o.auth ? `Basic ${Buffer.from(`${o.auth.username}:${o.auth.password}`).toString('base64')}` : undefined;
  if (offset > 0) {
    headers.Range = `bytes=${offset}-`;
    // If-Range needs a strong validator (RFC 9110 13.1.5); weak ones rely on the size check.
    if (c.etag && !c.etag.startsWith('W/')) headers['If-Range'] = c.etag;
  }
  const idleMs = o.idleTimeoutMs ?? 60_000;
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), idleMs);
  };
  const signal = o.signal ? AbortSignal.any([o.signal, idle.signal]) : idle.signal;
  const transient = (reason: string, status?: number, cause?: unknown): Transient =>
    new TransientDownloadError(o.url, offset, idle.signal.aborted ? `no data for ${idleMs} ms` : reason, status, { cause });

  armIdle();
  try {
    let res: Response;
    try {
      // Credentials go to the file's own origin only, after every redirect (transfer/origin-fetch.ts).
      ({ res } = await fetchWithinOrigin(o.url, { headers, signal }, { authorization, origin: o.feedOrigin, fetch: c.doFetch }));
    } catch (err) {
      if (err instanceof RedirectLoopError) throw new DownloadHttpError(o.url, 310, err.message);
      throw transient(`request failed: ${describe(err)}`, undefined, err);
    }
    const status = res.status;
    const resEtag = res.headers.get('etag') ?? undefined;
    if (status === 401 || status === 403) {
      await res.body?.cancel().catch(() => undefined);
      throw new DownloadAuthError(o.url, status);
    }
    if (status === 416 && offset > 0) {
      await res.body?.cancel().catch(() => undefined);
      const total = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (Number(total) === offset && (c.size === undefined || c.size === offset)) {
        await c.onResponse({ size: offset }); // we already hold every byte
        return 'done';
      }
      await c.onResponse({ restart: `server answered 416 to bytes=${offset}- (file shrank?)` });
      return 'again';
    }
    if (status === 408 || status === 429 || status >= 500) {
      await res.body?.cancel().catch(() => undefined);
      const err: Transient = transient(`HTTP ${status}`, status);
      err.retryAfterMs = retryAfterMs(res.headers.get('retry-after'));
      throw err;
    }
    if (status !== 200 && status !== 206) {
      await res.body?.cancel().catch(() => undefined);
      throw new DownloadHttpError(o.url, status);
    }
    if (status === 200) {
      const length = numberOrUndefined(res.headers.get('content-length'));
      await c.onResponse({
        size: length,
        etag: resEtag,
        ...(offset > 0 ? { restart: 'server answered 200 to a Range request (file changed, or no range support)' } : {}),
      });
    } else {
      const range = parseContentRange(res.headers.get('content-range'));
      let restart: string | undefined;
      if (!range || range.start !== offset) restart = `unexpected Content-Range ${res.headers.get('content-range')} for bytes=${offset}-`;
      else if (c.etag && resEtag && c.etag !== resEtag) restart = `ETag changed from ${c.etag} to ${resEtag}`;
      else if (c.size !== undefined && range.total !== undefined && c.size !== range.total) restart = `size changed from ${c.size} to ${range.total} bytes`;
      if (restart) {
        await res.body?.cancel().catch(() => undefined);
        await c.onResponse({ restart });
        return 'again';
      }
      await c.onResponse({ size: range!.total, etag: resEtag });
    }
    if (!res.body) return 'done';
    const reader = res.body.getReader();
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw transient(`connection failed mid-body: ${describe(err)}`, status, err);
        }
        if (chunk.done) return 'done';
        armIdle();
        await c.onChunk(chunk.value);
      }
    } finally {
      reader.cancel().catch(() => undefined);
    }
  } finally {
    clearTimeout(timer);
  }
}

function loadState(md5: IHasher, state: string): boolean {
  try {
    md5.load(fromBase64(state));
    return true;
  } catch {
    md5.init();
    return false;
  }
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** fsync a directory so a rename survives a power loss; best effort (not all platforms allow it). */
async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}

const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
