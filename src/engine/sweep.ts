import type { ContainerView } from './view.js';

/**
 * Where a runner's sweep over the ready set starts, so runners that share a
 * container rarely race for the same tasks. Alone, a runner takes tasks in
 * declaration order. With other runners around, each sweeps from its own
 * place: after a lost claim (its sweep ran into another runner's tasks), in
 * a picture read anew, or at the end of its run (what follows is known
 * taken, or the sweep wraps around), it starts again at a random place in
 * the middle half of the longest run of candidates it knows free. Work is
 * split by halving, as in work-stealing schedulers: the runner that owns a
 * run keeps its first half, the newcomer takes the second.
 *
 * A new start is probed with one claim before the others (the picture may
 * be old there): a lost probe costs one claim, not a claim per free slot.
 * After {@link PROBES_BEFORE_READ} probes lost in a row, the picture is
 * wrong wherever it looks (others ran what it shows pending, as at the end
 * of a run) and is worth reading again.
 */
export class Sweep {
  /** A claim was lost since the start was last chosen. */
  private jump = false;
  /** The picture the start was chosen in (a full read makes a new one, which starts at 0). */
  private placedIn: ContainerView | null = null;
  /** Order of the last task the sweep picked, or -1. */
  private lastPicked = -1;
  /** Probes lost in a row. */
  private lostProbes = 0;

  /** A claim of this runner found its position taken. */
  lost(): void {
    this.jump = true;
  }

  /** The sweep picked the task of this order (the last of a step's picks). */
  picked(order: number): void {
    this.lastPicked = order;
  }

  /**
   * Moves the view's sweep to a new start when it should (`runners`: runners
   * known to share the container, this one included); true when the step
   * should claim one task only, as a probe of a start chosen from an old picture.
   */
  place(view: ContainerView, runners: number): boolean {
    // A picture read anew is true everywhere: no probe needed there.
    let probe = true;
    if (view !== this.placedIn) {
      this.placedIn = view;
      this.jump = true;
      probe = false;
    }
    if (runners === 1) return false;
    if (!this.jump && this.lastPicked >= 0) {
      // The end of the run: whoever ran what follows got there first.
      const next = view.nextCandidate();
      if (next) {
        view.requeue(next);
        if (next.record.order !== this.lastPicked + 1) this.jump = true;
      }
    }
    if (!this.jump) return false;
    this.jump = false;
    const gap = view.widestGap();
    if (gap) view.startAt(gap.from + Math.floor(Math.random() * (gap.to - gap.from)));
    return probe && gap !== null;
  }

  /** The probe claim was won or lost; true when the picture should be read again. */
  probed(won: boolean): boolean {
    this.lostProbes = won ? 0 : this.lostProbes + 1;
    if (this.lostProbes < PROBES_BEFORE_READ) return false;
    this.lostProbes = 0;
    return true;
  }
}

/** Probes lost in a row after which a runner reads the whole container again. */
export const PROBES_BEFORE_READ = 3;
