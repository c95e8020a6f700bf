import type { HeldSlots, SlotHolding, SlotId, TaskStore } from '../store/types.js';
import type { ResolvedRunnerOptions } from './runner-options.js';

/** Scope of the slot documents that announce the runners of a container. */
export const ROSTER_SCOPE = 'roster';
/** Places read and handed out; a container with more runners than this gives the others no place (they sweep at random). */
export const ROSTER_PLACES = 64;
/** Tries to take a free place when others take the same one at once. */
const JOIN_TRIES = 4;

/**
 * The runners of a container as they announce themselves, so that runners
 * started together know of each other before their first claim (without it,
 * each learns of the others only from the claims it loses to them).
 *
 * A runner holds one slot document of scope `roster` while it runs: its
 * `index`, the runner's *place*, is the smallest free one when it joined
 * (taking it is an insert under the slots' unique index, so two runners
 * never share a place). The roster is read again one `pollMs` after joining
 * (runners that joined at the same time are on it by then). The slot expires
 * `leaseMs` after its last renewal (renewed every `leaseMs / 3` of its
 * steps, with the roster read again), is
 * released when the runner stops, and a runner that finds it expired evicts
 * it (fenced by its nonce): a dead runner frees its place within a lease.
 *
 * Places only steer where each runner starts sweeping the ready set (see
 * Sweep): a wrong or missing roster (a clock skew, a store without
 * `renewSlots`, a failed write) costs claims lost to others, never
 * correctness, which the claims' fencing tokens keep. Cost: one read and one
 * insert to join, one update and one read per renewal, one delete to leave.
 */
export class Roster {
  private held: HeldSlots | null = null;
  private ownPlace = -1;
  private members: SlotHolding[] = [];
  /** Monotonic time of the last join or renewal (ms); the next is due `leaseMs / 3` after. */
  private renewedAt = -Infinity;

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    private readonly opts: Pick<ResolvedRunnerOptions, 'runnerId' | 'leaseMs' | 'pollMs' | 'clock'>,
  ) {}

  /** This runner's place (0, 1, 2…), or -1 while it has none. */
  get place(): number {
    return this.ownPlace;
  }

  /** The places held by live runners as last read (this runner's included), ascending. */
  get places(): number[] {
    return this.members.map((m) => m.index).sort((a, b) => a - b);
  }

  /** The ids of the runners holding a live place as last read (this runner's included). */
  get runnerIds(): string[] {
    return this.members.map((m) => m.runnerId);
  }

  /**
   * Joins the roster, or renews this runner's place and reads the roster
   * again when `leaseMs / 3` has passed since. Throws what the store throws.
   */
  async refresh(): Promise<void> {
    if (!this.store.renewSlots) return;
    const now = performance.now();
    if (this.held && now - this.renewedAt < this.opts.leaseMs / 3) return;
    if (this.held) {
      if (await this.store.renewSlots(this.held, this.expiry())) {
        this.renewedAt = now;
        await this.read();
        return;
      }
      // Evicted or swept (this runner was silent for a lease): join again.
      this.held = null;
      this.ownPlace = -1;
    }
    await this.join(now);
  }

  /**
   * Reads the roster again now (one read), without renewing: runners that
   * joined at the same time as this one are on it by the time they run.
   * Throws what the store throws.
   */
  async reread(): Promise<void> {
    if (this.held) await this.read();
  }

  /** Gives this runner's place back (one delete); errors are the caller's to report. */
  async leave(): Promise<void> {
    const held = this.held;
    this.held = null;
    this.ownPlace = -1;
    if (held) await this.store.releaseSlots(held);
  }

  private async join(now: number): Promise<void> {
    const live = await this.read();
    const taken = new Set(live.map((m) => m.index));
    for (let tries = 0; tries < JOIN_TRIES; tries++) {
      // The smallest free place first; after a loss (runners joining at
      // once), one of the few smallest left at random, so that they do not
      // all queue for the same places one round trip at a time.
      const free: number[] = [];
      for (let i = 0; i < ROSTER_PLACES && free.length < (tries === 0 ? 1 : JOIN_TRIES); i++) if (!taken.has(i)) free.push(i);
      if (free.length === 0) return;
      const index = free[Math.floor(Math.random() * free.length)]!;
      const id: SlotId = { scope: ROSTER_SCOPE, index, expiresAt: this.expiry() };
      const got = await this.store.acquireSlots(this.container, [id], { task: this.opts.runnerId, token: 0, runnerId: this.opts.runnerId });
      if ('held' in got) {
        this.held = got.held;
        this.ownPlace = index;
        // Read again soon: runners that joined at the same time are on it then.
        this.renewedAt = now - this.opts.leaseMs / 3 + Math.min(this.opts.pollMs, this.opts.leaseMs / 3);
        this.members = [...this.members, { ...id, task: this.opts.runnerId, token: 0, runnerId: this.opts.runnerId, nonce: got.held.nonce }];
        return;
      }
      for (const h of got.taken) {
        taken.add(h.index);
        this.members.push(h);
      }
    }
  }

  /** Reads the roster; evicts the places whose lease is over; returns (and keeps) the live ones. */
  private async read(): Promise<SlotHolding[]> {
    const ids = Array.from({ length: ROSTER_PLACES }, (_, index) => ({ scope: ROSTER_SCOPE, index }));
    const there = await this.store.readSlots(this.container, ids);
    const now = this.opts.clock.now();
    const live: SlotHolding[] = [];
    for (const h of there) {
      if (h.nonce === this.held?.nonce || !h.expiresAt || h.expiresAt.getTime() >= now) live.push(h);
      // A runner silent for a whole lease: its place is free (if it is alive after all, its renewal finds nothing and it joins again).
      else await this.store.evictSlot(this.container, h);
    }
    this.members = live;
    return live;
  }

  private expiry(): Date {
    return new Date(this.opts.clock.now() + this.opts.leaseMs);
  }
}
