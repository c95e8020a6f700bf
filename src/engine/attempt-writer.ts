import { CancelledError, LeaseLostError } from '../errors.js';
import type { AttemptPatch, Claim, TaskStore } from '../store/types.js';

/**
 * Serialises and throttles the in-place writes of one running attempt:
 * heartbeats, progress and checkpoints share one writer, so at most one write
 * is in flight and the newest values always win. Progress and checkpoints are
 * coalesced to one write per `intervalMs`; `flush()` writes what is left.
 */
export class AttemptWriter {
  private pending: AttemptPatch = {};
  private hasPending = false;
  private lastWriteAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private lost: LeaseLostError | null = null;
  /** Set once the attempt ended; the error for a late write is built only when one comes. */
  private closed = false;
  /** The newest progress queued, so a checkpoint records the progress it stands for. */
  private progress: number;

  constructor(
    private readonly store: TaskStore,
    private readonly claim: Claim,
    private readonly intervalMs: number,
    private readonly onLost: (error: LeaseLostError) => void,
    private readonly onError: (error: Error) => void,
    /** Called with the monotonic send time of each lease extension the store confirmed. */
    private readonly onLeaseConfirmed: (sentAt: number) => void = () => undefined,
  ) {
    this.progress = claim.progress;
  }

  /** Queues a patch; it is written now if the last write is old enough, else at the trailing edge. */
  queue(patch: AttemptPatch): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.closed) return Promise.reject(this.lateWriteError());
    if (patch.progress !== undefined) this.progress = patch.progress;
    Object.assign(this.pending, patch, patch.progress !== undefined ? { progressAt: new Date() } : {});
    if (patch.checkpoint !== undefined) this.pending.checkpointProgress = this.progress;
    this.hasPending = true;
    const wait = this.lastWriteAt + this.intervalMs - Date.now();
    if (wait <= 0) return this.flush();
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.flush().catch(() => undefined); // reported through onLost / onError
    }, wait);
    return Promise.resolve();
  }

  /**
   * Extends the lease now, together with anything queued. Heartbeats go on
   * after `close()`, until the attempt's outcome is durable.
   */
  heartbeat(leaseUntil: Date): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    Object.assign(this.pending, { leaseUntil });
    this.hasPending = true;
    return this.flush();
  }

  /** Writes whatever is queued; resolves when it is persisted. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // Fenced: do not wait for a write still hanging on a dead connection.
    if (this.lost) return Promise.reject(this.lost);
    const run = async (): Promise<void> => {
      if (this.lost) throw this.lost;
      if (!this.hasPending) return;
      const patch = this.pending;
      this.pending = {};
      this.hasPending = false;
      this.lastWriteAt = Date.now();
      const sentAt = performance.now();
      try {
        await this.store.updateAttempt(this.claim, patch);
        if (patch.leaseUntil !== undefined) this.onLeaseConfirmed(sentAt);
      } catch (error) {
        if (error instanceof LeaseLostError) {
          this.lost = error;
          this.onLost(error);
        } else {
          this.onError(error as Error);
        }
        throw error;
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Why this attempt may no longer change anything (lost lease, or ended), or null while it may. */
  refusal(): Error | null {
    return this.lost ?? (this.closed ? this.lateWriteError() : null);
  }

  private lateWriteError(): CancelledError {
    return new CancelledError(`Attempt ${this.claim.attempt} of task "${this.claim.task}" has ended; its state can no longer change`);
  }

  /** The attempt fenced itself off: every later write is refused with `error`. */
  fence(error: LeaseLostError): void {
    this.lost ??= error;
  }

  /**
   * Ends the attempt's writes: a handler still running after its attempt
   * ended (it ignored a timeout's abort) gets a rejection instead of writing.
   */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
