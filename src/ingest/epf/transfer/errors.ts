/**
 * Errors of the transfer step (download, MD5 check, extraction). Retryable
 * failures extend `TaskStatusError`, so the engine retries the task with its
 * backoff and the next attempt resumes from the last checkpoint; failures that
 * another attempt cannot fix extend `NonRetryableError`, so the task fails at
 * once (src/engine/attempt.ts checks `instanceof NonRetryableError`).
 */
import { NonRetryableError, TaskStatusError } from '../../../index.js';

/**
 * A download failed for a reason that may pass: the connection dropped
 * mid-body, the server answered 5xx/408/429, or no byte came for the idle
 * timeout. The bytes received so far are on disk and checkpointed.
 */
export class TransientDownloadError extends TaskStatusError {
  constructor(
    readonly url: string,
    /** Byte offset saved in the last checkpoint; the next attempt resumes there. */
    readonly offset: number,
    reason: string,
    /** HTTP status, when the server answered at all. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super('EPF_DOWNLOAD_TRANSIENT', `Download of ${url} interrupted at byte ${offset}: ${reason}`, options);
  }
}

/** The server refused the credentials (HTTP 401/403). Retrying with the same ones cannot help. */
export class DownloadAuthError extends NonRetryableError {
  constructor(readonly url: string, readonly status: number) {
    super(`Download of ${url} refused with HTTP ${status}: check the EPF username and password`);
    (this as { code: string }).code = 'EPF_DOWNLOAD_AUTH';
  }
}

/** The server answered with a status a retry will not change (404, 410, other 4xx). */
export class DownloadHttpError extends NonRetryableError {
  constructor(readonly url: string, readonly status: number, detail = '') {
    super(`Download of ${url} failed with HTTP ${status}${detail ? `: ${detail}` : ''}`);
    (this as { code: string }).code = 'EPF_DOWNLOAD_HTTP';
  }
}

/** A `.md5` companion file is not in the BSD format `MD5 (name) = hex`, or names another file. */
export class Md5FormatError extends NonRetryableError {
  constructor(readonly text: string, reason: string) {
    super(`Malformed .md5 file (${reason}): ${JSON.stringify(text.slice(0, 200))}`);
    (this as { code: string }).code = 'EPF_MD5_FORMAT';
  }
}

/**
 * The downloaded bytes do not match the published digest. Retryable: the usual
 * cause is a file re-posted mid-download or a wrong `.md5` served once; the
 * caller should delete the file and download again.
 */
export class Md5MismatchError extends TaskStatusError {
  constructor(readonly file: string, readonly expected: string, readonly actual: string) {
    super('EPF_MD5_MISMATCH', `MD5 mismatch for ${file}: expected ${expected}, got ${actual}`);
  }
}

/** A `.tbz` archive is not valid bzip2 or not a valid tar. Downloading it again is the only fix. */
export class CorruptArchiveError extends TaskStatusError {
  constructor(readonly archive: string, reason: string, options?: { cause?: unknown }) {
    super('EPF_CORRUPT_ARCHIVE', `Corrupt archive ${archive}: ${reason}`, options);
  }
}

/** Extraction made no progress (no byte in or out) for too long; retrying starts it over. */
export class ExtractStalledError extends TaskStatusError {
  constructor(readonly archive: string, readonly stallMs: number) {
    super('EPF_EXTRACT_STALLED', `Extracting ${archive} made no progress for ${stallMs} ms; stopped it`);
  }
}

/**
 * The archive holds no table file where EPF puts them (`<group><date>/<table>`,
 * EPF.md: inside a .tbz), e.g. tables nested two folders deep. Importing nothing
 * and calling the file done would be a silent wrong result; another attempt
 * reads the same bytes.
 */
export class EmptyArchiveError extends NonRetryableError {
  constructor(readonly archive: string, readonly skipped: string[]) {
    super(
      `The archive ${archive} holds no EPF table file (expected <folder>/<table> entries)` +
        (skipped.length ? `; entries skipped: ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', ...' : ''}` : ''),
    );
    (this as { code: string }).code = 'EPF_EMPTY_ARCHIVE';
  }
}
