import { setImmediate as yieldToLoop } from 'node:timers/promises';

/**
 * Work on a large container (reading and folding its log, building a
 * picture of it) done in slices of at most about `budgetMs` of wall time,
 * with the event loop let through in between: timers, heartbeats and
 * replies run at least that often, whatever the size of the container and
 * however slow the machine (a count of items per slice is not a bound: on a
 * loaded machine the same count takes several times longer).
 *
 * Usage: `if (slice.due()) await slice.yield();` once per item (cheap: the
 * clock is read every {@link CHECK_EVERY} calls).
 */
export class TimeSlice {
  /** Calls of {@link due} between two reads of the clock. */
  static readonly CHECK_EVERY = 32;
  private sliceStartedAt = performance.now();
  private calls = 0;
  /** Yields so far (a figure for tests and benches). */
  yields = 0;

  /** @param budgetMs Wall time (ms) a slice may take before {@link due} says so. */
  constructor(private readonly budgetMs: number = DEFAULT_SLICE_MS) {}

  /** The current slice has used its budget: the caller should {@link yield}. */
  due(): boolean {
    if (++this.calls % TimeSlice.CHECK_EVERY !== 0) return false;
    return performance.now() - this.sliceStartedAt >= this.budgetMs;
  }

  /** Lets the event loop through (its I/O callbacks and timers run), then starts a new slice. */
  async yield(): Promise<void> {
    this.yields += 1;
    await yieldToLoop();
    this.sliceStartedAt = performance.now();
  }
}

/**
 * Wall time (ms) of one slice of work. Well under the 50 ms longest block
 * the engine allows itself (see docs/performance.md), leaving room for the
 * decode of one document or a call that cannot be split.
 */
export const DEFAULT_SLICE_MS = 8;
