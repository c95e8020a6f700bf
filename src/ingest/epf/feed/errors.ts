/**
 * Errors of the EPF feed client. Callers branch on the class (or `code`):
 * an auth error needs new credentials, an `EpfHttpError` with `retryable`
 * (5xx, 408, 429) or a network/timeout error is worth another try later.
 */
import { TaskStatusError } from '../../../errors.js';

/** Base class of the feed client's errors. */
export class EpfFeedError extends TaskStatusError {
  constructor(code: string, message: string, readonly url?: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The server refused the credentials (HTTP 401 or 403). Retrying will not help. */
export class EpfAuthError extends EpfFeedError {
  constructor(url: string, readonly status: number) {
    super('EPF_AUTH', `EPF feed refused the credentials (HTTP ${status}) for ${url}: check EPF_USERNAME / EPF_PASSWORD`, url);
  }
}

/** Any other non-2xx answer. */
export class EpfHttpError extends EpfFeedError {
  /** Server-suggested wait from `Retry-After`, in ms, when given. */
  readonly retryAfterMs?: number;
  constructor(url: string, readonly status: number, statusText: string, retryAfter?: string | null) {
    super('EPF_HTTP', `EPF feed answered HTTP ${status}${statusText ? ` ${statusText}` : ''} for ${url}`, url);
    const ms = parseRetryAfter(retryAfter);
    if (ms !== undefined) this.retryAfterMs = ms;
  }
  /** True for statuses that usually pass (5xx, 408, 429). */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/** No answer within the client's timeout. */
export class EpfTimeoutError extends EpfFeedError {
  constructor(url: string, readonly timeoutMs: number) {
    super('EPF_TIMEOUT', `EPF feed did not answer within ${Math.round(timeoutMs)} ms: ${url}`, url);
  }
}

/** The request failed below HTTP (connection refused or reset, DNS, TLS). */
export class EpfNetworkError extends EpfFeedError {
  constructor(url: string, cause: unknown) {
    const detail = cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : String(cause);
    super('EPF_NETWORK', `EPF feed request failed: ${url}: ${detail}`, url, { cause });
  }
}


/** A listing that is not an autoindex page, or a layout that does not match the URL. */
export class EpfListingError extends EpfFeedError {
  constructor(message: string, url: string) {
    super('EPF_LISTING', message, url);
  }
}

/** `Retry-After` as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A request was redirected in a loop, or more than MAX_REDIRECTS times (transfer/origin-fetch.ts); retrying does not help. */
export class EpfRedirectError extends EpfFeedError {
  constructor(url: string, detail: string) {
    super('EPF_REDIRECT', `EPF feed redirects without end for ${url}: ${detail}`, url);
  }
}
