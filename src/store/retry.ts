/**
 * Deadlines and retries for the engine's own database operations.
 *
 * A write whose reply never comes must not block an attempt for the driver's
 * ~30 s socket timeout, and a transient error (a reset connection, a timeout,
 * a replica set electing a new primary) must not be mistaken for a verdict.
 * Every write the engine retries is idempotent: appends reuse the same `_id`
 * and nonce, and in-place updates `$set` the same values.
 */

/** An engine operation got no answer within its deadline; it may still have been applied. */
export class OperationTimeoutError extends Error {
  constructor(readonly operation: string, readonly timeoutMs: number) {
    super(`Database operation "${operation}" got no reply within ${timeoutMs} ms (it may still have been applied)`);
    this.name = 'OperationTimeoutError';
  }
}

/**
 * Server error codes that say "try again": not primary, shutting down,
 * network, time limits and write-concern timeouts (MongoDB's `error_codes.yml`).
 */
const TRANSIENT_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed (wtimeout)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/** Driver error classes that never carry a verdict on the write itself. */
const TRANSIENT_NAMES = /^(MongoNetworkError|MongoNetworkTimeoutError|MongoServerSelectionError|MongoPoolClearedError|MongoTopologyClosedError|MongoNotConnectedError|MongoOperationTimeoutError|MongoWriteConcernError|OperationTimeoutError)$/;

/**
 * True for an error after which the same operation may succeed when repeated:
 * network failures, timeouts, not-primary and shutdown codes, the driver's
 * retryable labels, and mongoose's "buffering timed out" while disconnected.
 * A duplicate key or a validation error is a verdict, never transient.
 */
export function isTransientError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const e = error as { name?: unknown; code?: unknown; message?: unknown; errorLabels?: unknown; hasErrorLabel?: (l: string) => boolean; cause?: unknown };
  if (typeof e.name === 'string' && TRANSIENT_NAMES.test(e.name)) return true;
  if (typeof e.code === 'number' && TRANSIENT_CODES.has(e.code)) return true;
  const labels = Array.isArray(e.errorLabels) ? (e.errorLabels as unknown[]) : [];
  if (labels.includes('RetryableWriteError') || labels.includes('TransientTransactionError') || labels.includes('ResetPool')) return true;
  if (typeof e.message === 'string' && /buffering timed out|connection .* closed|ECONNRESET|EPIPE|socket hang up/i.test(e.message)) return true;
  return false;
}

/**
 * Settles like `promise`, or rejects with {@link OperationTimeoutError} after
 * `timeoutMs`. The operation itself is not cancelled: an engine operation is
 * idempotent, so the caller may repeat it.
 */
export function withDeadline<T>(operation: string, timeoutMs: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OperationTimeoutError(operation, timeoutMs)), timeoutMs);
  });
  promise.catch(() => undefined); // it may settle after the deadline
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** How {@link retryTransient} retries. */
export interface RetryOptions {
  /** Name of the operation, for timeout messages. */
  operation: string;
  /** Deadline of each try, in ms. */
  timeoutMs: number;
  /** Total time for all tries, in ms; the last error is thrown after it. */
  budgetMs: number;
  /** First pause between tries, in ms (doubles up to 1 s). @defaultValue 50 */
  initialDelayMs?: number;
}

/**
 * Runs `fn` under a per-try deadline and repeats it after a transient error
 * until `budgetMs` (measured on the monotonic clock) is used up; any other
 * error is thrown at once. `fn` must be idempotent.
 */
export async function retryTransient<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const start = performance.now();
  let delay = o.initialDelayMs ?? 50;
  for (;;) {
    const left = o.budgetMs - (performance.now() - start);
    try {
      return await withDeadline(o.operation, Math.max(1, Math.min(o.timeoutMs, left)), fn());
    } catch (error) {
      const leftAfter = o.budgetMs - (performance.now() - start);
      if (!isTransientError(error) || leftAfter <= delay) throw error;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(1000, delay * 2);
    }
  }
}
