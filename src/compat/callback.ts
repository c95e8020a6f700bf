import { coerceError, InvalidOptionError } from '../errors.js';

/** A node-style callback of the 0.0.1 API: `cb(err)` on failure, `cb(null, result, ...extra)` on success. */
export type NodeCallback<T, Extra extends unknown[] = []> = (error: Error | null, result?: T, ...extra: Partial<Extra>) => void;

type AnyCallback = (error: Error | null, ...results: unknown[]) => void;

/** Throws when a callback argument is given but is not a function (a programming error, so thrown at once). */
export function checkCallback(cb: unknown): AnyCallback | undefined {
  if (cb === undefined || cb === null) return undefined;
  if (typeof cb !== 'function') throw new InvalidOptionError('callback', `must be a function, got ${typeof cb}`);
  return cb as AnyCallback;
}

/**
 * Runs `work` and reports its outcome the 0.0.1 way: with a callback, calls it
 * exactly once and always asynchronously (`cb(null, ...results)` or `cb(err)`);
 * the call happens outside any promise chain, so a callback that throws raises
 * an uncaught exception, as Node's own callback APIs do, and is never called a
 * second time. Without a callback, returns a promise of `results[0]`.
 */
export function deliver<R extends readonly [unknown, ...unknown[]]>(
  work: () => Promise<R>,
  callback: unknown,
): Promise<R[0]> | undefined {
  const cb = checkCallback(callback);
  // Synchronous throws (validation) become rejections too.
  const outcome = Promise.resolve().then(work);
  if (!cb) return outcome.then((results) => results[0]);
  outcome.then(
    (results) => process.nextTick(cb, null, ...results),
    (error: unknown) => process.nextTick(cb, coerceError(error)),
  );
  return undefined;
}
