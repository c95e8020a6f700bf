/**
 * How often a runner with nothing to run or watch reads the whole container
 * again. Such a runner sees other runners' claims and outcomes only by
 * reading everything (they do not move the container's revision), yet reads
 * the container document (by `_id`) every `pollMs`; its full reads back off
 * from `pollMs` doubling to {@link MAX_IDLE_FACTOR} × `pollMs` while the
 * revision stands still, and start again from `pollMs` once it moves or the
 * runner has work again.
 */
export class IdleBackoff {
  private intervalMs: number;
  /** Monotonic time (ms) of the next full read. */
  reloadAt = 0;

  constructor(private readonly pollMs: number) {
    this.intervalMs = pollMs;
  }

  /** A full read was made at monotonic time `at` (ms): the next one waits twice as long (up to the cap). */
  reloaded(at: number): void {
    this.reloadAt = at + this.intervalMs;
    this.intervalMs = Math.min(this.intervalMs * 2, this.pollMs * MAX_IDLE_FACTOR);
  }

  /** The revision moved, or the runner has work: back to a full read per `pollMs` when idle. */
  reset(): void {
    this.intervalMs = this.pollMs;
    this.reloadAt = 0;
  }
}

/** Longest interval between full reads of an idle runner, in `pollMs` (16 s at the default 1 s). */
export const MAX_IDLE_FACTOR = 16;
