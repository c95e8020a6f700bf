/**
 * The holder's side of a lease: an attempt fences itself off once it can no
 * longer prove that it holds its lease, judged on its own monotonic clock
 * (`performance.now()`), never by comparing wall clocks of machines.
 *
 * A lease write (the claim, then each heartbeat) counts from the moment it
 * was *sent*, and only once the store confirmed it. Readers take a task over
 * only after seeing its lease unchanged for `leaseMs` of their own time
 * (see lease-observer.ts), which starts after the write they saw was sent; so
 * an attempt that stops at `lastConfirmedSend + leaseMs - marginMs` has
 * stopped before any reader may take over, whatever the wall clocks say.
 */
export class LeaseFence {
  private confirmedAt: number;
  private timer: NodeJS.Timeout | null = null;
  private fired = false;

  constructor(
    /** Monotonic time (ms) at which the claim was sent. */
    sentAt: number,
    private readonly leaseMs: number,
    private readonly marginMs: number,
    private readonly onExpired: () => void,
  ) {
    this.confirmedAt = sentAt;
    this.arm();
  }

  /**
   * A lease write sent at monotonic `sentAt` was confirmed by the store. A
   * write sent after the deadline proves nothing: a reader may have judged
   * the lease expired meanwhile and be taking the task over, so it never
   * revives a lapsed lease (after a blocked event loop, a heartbeat timer
   * may run before the fence's own timer).
   */
  confirm(sentAt: number): void {
    if (this.fired || sentAt <= this.confirmedAt || sentAt >= this.deadline) return;
    this.confirmedAt = sentAt;
    this.arm();
  }

  /** Monotonic time (ms) after which this attempt must no longer act as the holder. */
  get deadline(): number {
    return this.confirmedAt + this.leaseMs - this.marginMs;
  }

  /** True once the deadline has passed. */
  get expired(): boolean {
    return this.fired || performance.now() >= this.deadline;
  }

  /**
   * Checks the deadline now, synchronously: fences the attempt off (calls
   * `onExpired`) if it has passed. Called at every `ctx.*` call and when the
   * runner sees its event loop turn again after a delay, so a handler that
   * blocks the loop learns of its lapsed lease before its timers could run.
   * Returns true once fenced.
   */
  check(): boolean {
    if (!this.fired && performance.now() >= this.deadline) this.fire();
    return this.fired;
  }

  /** Stops watching (the attempt ended). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private fire(): void {
    if (this.fired) return;
    this.fired = true;
    this.stop();
    this.onExpired();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, this.deadline - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (performance.now() < this.deadline) return this.arm();
      this.fire();
    }, wait);
    this.timer.unref?.();
  }
}

/**
 * Safety margin of the self-fence, in ms: a tenth of the lease, but at most
 * half the gap between heartbeats and the lease, so a healthy holder whose
 * heartbeat is merely on its way is not fenced.
 */
export function fenceMarginMs(leaseMs: number, heartbeatMs: number): number {
  return Math.max(0, Math.min(Math.ceil(leaseMs / 10), Math.floor((leaseMs - heartbeatMs) / 2)));
}
