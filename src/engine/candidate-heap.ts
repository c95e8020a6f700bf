import type { TaskTable } from './task-table.js';

/**
 * The candidates of a picture: a binary heap of task indexes (into a
 * {@link TaskTable}) ordered by priority, highest first, then declaration
 * order from an origin up, then from 0 up to it, then name. A sweep that
 * starts elsewhere (see {@link startAt}) re-orders the heap in place.
 * The picture decides what goes in; the heap only orders.
 */
export class CandidateHeap {
  private heap = new Int32Array(0);
  private count = 0;
  /** Where the order starts: tasks of this order and above first, then the rest from 0 (a sweep that wraps around). */
  private origin = 0;

  /** @param table the table the indexes point into (read at each comparison: a picture refills its table) */
  constructor(private readonly table: () => TaskTable) {}

  /** Candidates held. */
  get size(): number {
    return this.count;
  }

  /** The candidate held at heap position `k` (0 ≤ k < size), in no particular order. */
  at(k: number): number {
    return this.heap[k]!;
  }

  /** Empties the heap, with room for `capacity` indexes; the origin stays. */
  reset(capacity: number): void {
    this.heap = new Int32Array(capacity);
    this.count = 0;
  }

  /** Adds an index without ordering; call {@link heapify} once every index is in. */
  addUnordered(i: number): void {
    this.heap[this.count++] = i;
  }

  /** Orders what {@link addUnordered} put in, one step per yield (a caller's time slice decides when to stop). */
  *heapify(): Generator<void> {
    for (let k = (this.count >> 1) - 1; k >= 0; k--) {
      this.siftDown(k);
      yield;
    }
  }

  push(i: number): void {
    const h = this.heap;
    let k = this.count++;
    h[k] = i;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!this.before(h[k]!, h[p]!)) break;
      [h[k], h[p]] = [h[p]!, h[k]!];
      k = p;
    }
  }

  /** Takes the first candidate off; the heap must not be empty. */
  pop(): number {
    const h = this.heap;
    const top = h[0]!;
    const last = h[--this.count]!;
    if (this.count > 0) {
      h[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** Orders from `order` up, then from 0 (declaration order is `startAt(0)`, the default). */
  startAt(order: number): void {
    if (order === this.origin) return;
    this.origin = order;
    for (const _ of this.heapify());
  }

  private siftDown(from: number): void {
    const h = this.heap;
    const size = this.count;
    let k = from;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let m = k;
      if (l < size && this.before(h[l]!, h[m]!)) m = l;
      if (r < size && this.before(h[r]!, h[m]!)) m = r;
      if (m === k) break;
      [h[k], h[m]] = [h[m]!, h[k]!];
      k = m;
    }
  }

  /** Candidate order: higher priority first, then declaration order from the origin up, then from 0 up to it, then name. */
  private before(a: number, b: number): boolean {
    const table = this.table();
    const pa = table.priority(a);
    const pb = table.priority(b);
    if (pa !== pb) return pa > pb;
    const oa = table.order[a]!;
    const ob = table.order[b]!;
    const aWrapped = oa < this.origin;
    const bWrapped = ob < this.origin;
    if (aWrapped !== bWrapped) return bWrapped;
    return oa < ob || (oa === ob && table.names[a]! < table.names[b]!);
  }
}
