import type { ContainerView } from './view.js';

/**
 * Where a runner's sweep over the ready set starts, so runners that share a
 * container rarely race for the same tasks. Alone, a runner takes tasks in
 * declaration order. With other runners around, each sweeps from its own
 * place: after a lost claim (its sweep ran into another runner's tasks), in
 * a picture read anew, or at the end of its run (what follows is known
 * taken, or the sweep wraps around), it starts again at a random place in
 * the middle half of the longest run of candidates it knows free (a runner
 * placed by the roster that lost nothing carries on where it was). Work is
 * split by halving, as in work-stealing schedulers: the runner that owns a
 * run keeps its first half, the newcomer takes the second.
 *
 * A runner with a place in the container's roster (see Roster) starts its
 * first sweep at its own share of the longest run of candidates: the live
 * places, ascending, split the run evenly, so the runner with the k-th of n
 * places starts at k/n of it, and runners started together sweep apart from
 * their first claim, with equal shares. By rank rather than by place number:
 * places need not be 0…n-1 (a runner that lost a race for a place takes one
 * of the few smallest free, and places given back leave holes), and places
 * 0, 2, 4 and 5 as offsets 0, 1/4, 1/8 and 5/8 left one runner a share 3×
 * another's. Where its sweep reaches another place's start, the next claim
 * is a probe.
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
  /** Orders where other runners of the roster started their first sweep (the sweep probes there). */
  private othersStarts = new Set<number>();
  /** The run of candidates the first sweep was placed in by the roster, and the places known then (joined later: learnt later). */
  private shares: { from: number; to: number; own: number; places: string } | null = null;
  /** The probe under way is at another runner's start. */
  private probingStart = false;
  /** Others' starts this sweep has probed already. */
  private readonly probedStarts = new Set<number>();

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
  place(view: ContainerView, runners: number, roster: RosterPlaces = NO_ROSTER): boolean {
    // A picture read anew is true everywhere: no probe needed there.
    let probe = true;
    if (view !== this.placedIn) {
      const first = this.placedIn === null;
      this.placedIn = view;
      probe = false;
      // (Alone as far as it knows, place 0 keeps declaration order: the others' starts are noted for when they show up.)
      if (first && roster.place >= 0) return this.placeByRoster(view, roster, runners > 1 || roster.place > 0);
      // Placed by the roster and nothing lost since: carry on through its share in the new picture.
      if (this.shares && !this.jump && runners > 1) {
        view.startAt(this.lastPicked >= 0 ? this.lastPicked + 1 : this.shares.own);
        return false;
      }
      this.jump = true;
    }
    // Runners that joined the roster after this one placed its first sweep: where theirs started.
    if (this.shares && this.shares.places !== roster.places.join()) this.noteStarts(roster);
    if (runners === 1) return false;
    if (!this.jump && this.lastPicked >= 0) {
      // Where another runner's first sweep started: probe before claiming on.
      if (this.othersStarts.delete(this.lastPicked + 1)) {
        this.probedStarts.add(this.lastPicked + 1);
        this.probingStart = true;
        return true;
      }
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

  /**
   * True when a step that picked already should stop before the task of
   * this order: another runner's first sweep started there (see {@link place}).
   */
  stopsBefore(order: number): boolean {
    return this.othersStarts.has(order);
  }

  /** Starts the first sweep at this runner's share of the longest run of candidates, and notes the others'. */
  private placeByRoster(view: ContainerView, roster: RosterPlaces, move: boolean): false {
    this.jump = false;
    const run = view.longestRun();
    if (!run) return false;
    const own = startOf(run, roster, roster.place);
    this.shares = { ...run, own, places: '' };
    this.noteStarts(roster);
    if (move) view.startAt(own);
    return false;
  }

  /** Where the other places' first sweeps start in the run this runner's was placed in. */
  private noteStarts(roster: RosterPlaces): void {
    const shares = this.shares!;
    shares.places = roster.places.join();
    this.othersStarts = new Set();
    for (const p of roster.places) {
      const at = startOf(shares, roster, p);
      if (p !== roster.place && at !== shares.own && !this.probedStarts.has(at)) this.othersStarts.add(at);
    }
  }

  /** The probe claim was won or lost; true when the picture should be read again. */
  probed(won: boolean): boolean {
    const atStart = this.probingStart;
    this.probingStart = false;
    // Another runner's share begins there: this runner's is done, and its
    // picture of the rest is as old as its run. Read it rather than probe at random.
    if (!won && atStart) {
      this.lostProbes = 0;
      return true;
    }
    this.lostProbes = won ? 0 : this.lostProbes + 1;
    if (this.lostProbes < PROBES_BEFORE_READ) return false;
    this.lostProbes = 0;
    return true;
  }
}

/** This runner's place in the container's roster (-1: none) and every live place, ascending (see Roster). */
export interface RosterPlaces {
  readonly place: number;
  readonly places: readonly number[];
}

const NO_ROSTER: RosterPlaces = { place: -1, places: [] };

/** The order where `place` starts its first sweep in a run `[from, to)` of candidates, among the roster's live places. */
const startOf = (run: { from: number; to: number }, roster: RosterPlaces, place: number): number =>
  run.from + Math.floor(shareStart(roster.places, place) * (run.to - run.from));

/**
 * Where `place` starts its first sweep, as a fraction 0–1 of the run: its
 * rank among the live `places` (ascending; a place not among them counts as
 * one more) over their number, so n places split the run into n equal shares.
 */
export function shareStart(places: readonly number[], place: number): number {
  const listed = places.includes(place);
  const rank = places.filter((p) => p < place).length;
  return rank / (places.length + (listed ? 0 : 1));
}

/** Probes lost in a row after which a runner reads the whole container again. */
export const PROBES_BEFORE_READ = 3;
