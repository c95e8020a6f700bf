/**
 * Small HTTP helpers of the resumable download: `Content-Range` and
 * `Retry-After` parsing (RFC 9110 14.4 and 10.2.3), backoff, abortable sleep.
 */
import { CancelledError } from '../../../index.js';

/** Parses `bytes start-end/total` (total may be `*`). */
export function parseContentRange(value: string | null): { start: number; end: number; total?: number } | undefined {
  const m = value ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** A non-negative integer header value, or undefined. */
export function numberOrUndefined(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** Retry-After as seconds or an HTTP date, in ms (capped at 60 s). */
export function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 60_000) : undefined;
}

/** Exponential backoff in ms (max 30 s); a server's Retry-After wins. */
export function backoffMs(baseMs: number, failures: number, retryAfter?: number): number {
  return retryAfter ?? Math.min(baseMs * 2 ** (failures - 1), 30_000);
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal!));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Throws the signal's reason if it is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** The error to throw for an aborted signal: its reason, or a CancelledError. */
export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error && signal.reason.name !== 'AbortError'
    ? signal.reason
    : new CancelledError('Download aborted');
}

/** One-line description of a fetch error, with undici's cause code (e.g. UND_ERR_SOCKET). */
export function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
}
