/**
 * Group commit's queue: items added during one event-loop turn are handed
 * over together at the next `setImmediate`, at most `max` by weight per batch
 * (always at least one item); what is left goes in the next turn's batch.
 * The task log's appends and the slots' inserts and deletes each use one.
 */
export class TurnBatch<T> {
  private queue: T[] = [];
  private scheduled = false;

  /**
   * @param flush called with each batch, in the order items were added
   * @param max most weight per batch (documents per command)
   * @param weight an item's weight; 1 when omitted
   */
  constructor(
    private readonly flush: (batch: T[]) => void,
    private readonly max: number,
    private readonly weight: (item: T) => number = () => 1,
  ) {}

  /** Queues items at the back, for this turn's batch. */
  add(...items: T[]): void {
    this.queue.push(...items);
    this.schedule();
  }

  /** Queues items at the front, ahead of everything queued (items to try again, in their order). */
  addFront(...items: T[]): void {
    this.queue.unshift(...items);
    this.schedule();
  }

  /** Whether an item still waiting for its batch passes `test`. */
  has(test: (item: T) => boolean): boolean {
    return this.queue.some(test);
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      let n = 0;
      let total = 0;
      while (n < this.queue.length && (n === 0 || total + this.weight(this.queue[n]!) <= this.max)) total += this.weight(this.queue[n++]!);
      const batch = this.queue.splice(0, n);
      this.schedule();
      this.flush(batch);
    });
  }
}
