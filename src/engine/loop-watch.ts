import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * Measures how late a runner's event loop turns, while attempts run, and
 * tells every watcher at the first turn after a delay. A handler that
 * computes synchronously blocks the loop: no heartbeat goes out and no timer
 * fires, so its lease may lapse unseen. The attempts watch this to check
 * their lease at once when the loop turns again (see `LeaseFence.check`).
 *
 * The delay of a turn is the larger of two measures: how late this watch's
 * own tick fired (exact, and known at the very turn after a block), and the
 * maximum that `perf_hooks.monitorEventLoopDelay` sampled since the last tick
 * (Node's own measure; it is sampled by a separate libuv timer, so the turn
 * right after a block may not have recorded it yet).
 */
export class LoopWatch {
  private readonly watchers = new Set<(delayMs: number) => void>();
  private timer: NodeJS.Timeout | null = null;
  private histogram: IntervalHistogram | null = null;
  private lastTickAt = 0;

  constructor(
    /** Interval between ticks, in ms. */
    private readonly tickMs: number,
    /** A delay of at least this many ms is reported to `onBlocked`. */
    private readonly blockedMs: number = Infinity,
    /** Called once per late turn of at least `blockedMs`, after every watcher had its turn. */
    private readonly onBlocked: (delayMs: number) => void = () => undefined,
  ) {}

  /**
   * Calls `onTurn` at every tick with the loop's delay before it (ms, 0 when
   * on time); ticks run while at least one watcher is registered. Returns
   * the function that unregisters it.
   */
  watch(onTurn: (delayMs: number) => void): () => void {
    this.watchers.add(onTurn);
    if (this.watchers.size === 1) this.start();
    return () => {
      this.watchers.delete(onTurn);
      if (this.watchers.size === 0) this.stop();
    };
  }

  private start(): void {
    this.histogram = monitorEventLoopDelay({ resolution: Math.max(1, Math.min(20, this.tickMs)) });
    this.histogram.enable();
    this.lastTickAt = performance.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref?.();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.histogram?.disable();
    this.histogram = null;
  }

  private tick(): void {
    const now = performance.now();
    const late = now - this.lastTickAt - this.tickMs;
    this.lastTickAt = now;
    let sampled = 0;
    if (this.histogram) {
      // Nanoseconds; the histogram's max is 0 until it recorded a sample.
      sampled = this.histogram.max / 1e6;
      this.histogram.reset();
    }
    const delayMs = Math.max(0, late, sampled);
    for (const onTurn of [...this.watchers]) onTurn(delayMs);
    if (delayMs >= this.blockedMs) this.onBlocked(delayMs);
  }
}

/**
 * The longest event-loop delay after which a lease may have lapsed, in ms: a
 * holder renews every `heartbeatMs`, and fences itself `marginMs` before its
 * lease ends, so a delay over `leaseMs - marginMs - heartbeatMs` may have
 * kept its renewal from going out in time.
 */
export function lapseRiskDelayMs(leaseMs: number, heartbeatMs: number, marginMs: number): number {
  return Math.max(0, leaseMs - marginMs - heartbeatMs);
}
