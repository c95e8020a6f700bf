import type { HeldSlots, SlotHolding, SlotId, TaskStore } from '../store/types.js';
import { isRateToken, RateWindows, withoutRateTokens } from './rate-windows.js';
import type { ResolvedRunnerOptions } from './runner-options.js';

/** Back-off after a missed slot: random up to base × 2^misses ms, at most the cap. */
const BACKOFF_BASE_MS = 10;
const BACKOFF_CAP_MS = 500;

/** Key of a slot within its scope. */
const keyOf = (id: SlotId): string => `${id.scope}#${id.index}`;

/** Scope of `globalConcurrency`. */
const ALL = 'all';
const groupScope = (group: string): string => `group:${group}`;

/**
 * This runner's side of the limits shared by every runner of a container
 * (`globalConcurrency`, a group's `global` and `rate`), kept in the database
 * as slot documents (see store `acquireSlots`). A task takes one slot of each
 * of its scopes, and a token of its group's rate limit (see RateWindows),
 * before its claim (one insert for all) and gives the slots back after its
 * outcome (one delete; a token it started under stays spent).
 *
 * A slot whose holder is gone frees itself within one lease: a slot is held
 * by the claim it was taken for, whose lease the holder renews with its
 * heartbeats. A runner that finds a scope full watches each holder's claim
 * entry and evicts the slot (fenced by its nonce) once that claim has been
 * over (its next position is written, or another runner took the position)
 * for `heartbeatMs`, or has stayed unchanged for `leaseMs`, of this runner's
 * monotonic time (a live holder releases its slot right after its outcome):
 * by then the holder has fenced itself off (see lease-fence.ts; the same
 * argument as for taking over a task).
 */
export class SharedLimits {
  /** Slots held now as last read, by scope then index, plus this runner's own changes since. */
  private held = new Map<string, Map<number, SlotHolding | 'reserved'>>();
  /** Holders watched while their scope is full: nonce → (what their claim showed, monotonic ms since when). */
  private readonly watched = new Map<string, { seen: string; since: number }>();
  private readonly scopes: Array<{ scope: string; limit: number }>;
  /**
   * Scopes whose last acquisition found a slot taken: not tried again before
   * this monotonic time (ms), a random back-off growing with each miss, so
   * runners that read the same free slot do not all keep inserting for it.
   */
  private readonly backoff = new Map<string, { until: number; misses: number }>();
  /** Rate limits of groups. */
  private readonly rates: RateWindows;
  /**
   * Rate tokens this runner holds whose claim was lost (nothing started
   * under them), by group: the next claim of the group in the same window
   * runs under one instead of deleting it and inserting another.
   */
  private readonly spares = new Map<string, HeldSlots[]>();
  /** Spare tokens handed out by `reserve` and not yet used or given back (`scope#index` → the acquisition). */
  private readonly lent = new Map<string, { group: string; held: HeldSlots }>();

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    private readonly opts: Pick<ResolvedRunnerOptions, 'globalConcurrency' | 'globalGroups' | 'rateGroups' | 'runnerId' | 'leaseMs' | 'heartbeatMs' | 'clock'>,
    /** Called with the id of each runner seen holding a slot or token (the runner learns its peers from them). */
    private readonly notePeer: (runnerId: string) => void = () => undefined,
  ) {
    this.rates = new RateWindows(store, container, opts.rateGroups, opts.clock, opts.runnerId);
    this.scopes = [
      ...(opts.globalConcurrency !== null ? [{ scope: ALL, limit: opts.globalConcurrency }] : []),
      ...Object.entries(opts.globalGroups).map(([g, limit]) => ({ scope: groupScope(g), limit })),
    ];
  }

  /** Ids of the runners sharing the container as far as this one knows (itself included). */
  set peers(ids: readonly string[]) {
    this.rates.setPeers(ids);
  }

  /** Some limit is shared with other runners. */
  get enabled(): boolean {
    return this.scopes.length > 0 || this.rates.enabled;
  }

  /**
   * Reads the slots held now (one read), and judges the holders of full
   * scopes, evicting those that are gone (a couple of reads by `_id` each).
   */
  async refresh(): Promise<void> {
    await this.rates.refresh();
    if (this.scopes.length === 0) return;
    const ids = this.scopes.flatMap(({ scope, limit }) => Array.from({ length: limit }, (_, index) => ({ scope, index })));
    const holdings = await this.store.readSlots(this.container, ids);
    const readAt = performance.now();
    const held = new Map<string, Map<number, SlotHolding | 'reserved'>>();
    for (const h of holdings) {
      const scope = held.get(h.scope) ?? new Map<number, SlotHolding | 'reserved'>();
      scope.set(h.index, h);
      held.set(h.scope, scope);
    }
    // Reservations of claims in flight here stay counted.
    for (const [scope, slots] of this.held) {
      for (const [index, h] of slots) {
        if (h !== 'reserved' || held.get(scope)?.has(index)) continue;
        const s = held.get(scope) ?? new Map<number, SlotHolding | 'reserved'>();
        s.set(index, 'reserved');
        held.set(scope, s);
      }
    }
    this.held = held;
    for (const h of holdings) this.notePeer(h.runnerId);
    const live = new Set(holdings.map((h) => h.nonce));
    for (const nonce of this.watched.keys()) if (!live.has(nonce)) this.watched.delete(nonce);
    for (const { scope, limit } of this.scopes) {
      const slots = held.get(scope);
      if (!slots || slots.size < limit) continue;
      await Promise.all([...slots.values()].map((h) => (h === 'reserved' || h.runnerId === this.opts.runnerId ? null : this.judge(h, readAt))));
    }
  }

  /**
   * Reserves one free slot of each scope of a task of `group` (as far as
   * this runner knows), or returns null when one is full.
   */
  reserve(group: string | null): SlotId[] | null {
    if (!this.enabled) return [];
    const spare = this.takeSpare(group);
    if (spare) return spare;
    const picked: SlotId[] = [];
    for (const { scope, limit } of this.scopes) {
      if (scope !== ALL && scope !== (group === null ? null : groupScope(group))) continue;
      if ((this.backoff.get(scope)?.until ?? 0) > performance.now()) {
        this.unreserve(picked);
        return null;
      }
      const slots = this.held.get(scope) ?? new Map<number, SlotHolding | 'reserved'>();
      const free = Array.from({ length: limit }, (_, i) => i).filter((i) => !slots.has(i));
      if (free.length === 0) {
        this.unreserve(picked);
        return null;
      }
      // A random free index: runners that read the same picture rarely pick the same one.
      const index = free[Math.floor(Math.random() * free.length)]!;
      slots.set(index, 'reserved');
      this.held.set(scope, slots);
      picked.push({ scope, index });
    }
    if (this.rates.has(group)) {
      const token = this.rates.reserve(group);
      if (!token) {
        this.unreserve(picked);
        return null;
      }
      picked.push(token);
    }
    return picked;
  }

  /** Gives back reservations that were not used. */
  unreserve(ids: readonly SlotId[]): void {
    for (const id of ids) {
      const lent = this.lent.get(keyOf(id));
      if (lent) {
        // A spare not used after all: still held, still spare.
        this.lent.delete(keyOf(id));
        this.spares.set(lent.group, [...(this.spares.get(lent.group) ?? []), lent.held]);
      } else if (isRateToken(id)) this.rates.unreserve(id);
    }
    for (const id of ids) if (this.held.get(id.scope)?.get(id.index) === 'reserved') this.held.get(id.scope)!.delete(id.index);
  }

  /** Takes reserved slots for a task about to be claimed at `token` (one insert); null when one was taken meanwhile. */
  async acquire(ids: readonly SlotId[], task: string, token: number): Promise<HeldSlots | null> {
    if (ids.length === 0) return null;
    const lent = ids.length === 1 ? this.lent.get(keyOf(ids[0]!)) : undefined;
    if (lent) {
      // A spare token: held already, nothing to insert.
      this.lent.delete(keyOf(ids[0]!));
      return lent.held;
    }
    try {
      const got = await this.store.acquireSlots(this.container, ids, { task, token, runnerId: this.opts.runnerId });
      // Rate tokens stay counted as taken in their window, unless given back below.
      this.unreserve(ids.filter((id) => !isRateToken(id)));
      if ('held' in got) {
        for (const id of ids) this.backoff.delete(id.scope);
        // Ours now: counted as held until released.
        for (const id of ids) this.held.get(id.scope)?.set(id.index, { ...id, task, token, runnerId: this.opts.runnerId, nonce: got.held.nonce });
        return got.held;
      }
      for (const h of got.taken) {
        this.notePeer(h.runnerId);
        if (isRateToken(h)) {
          this.rates.noteTaken(h);
          continue;
        }
        this.held.get(h.scope)?.set(h.index, h);
        const misses = (this.backoff.get(h.scope)?.misses ?? 0) + 1;
        const ms = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** misses);
        this.backoff.set(h.scope, { until: performance.now() + ms, misses });
      }
      // A token of ours deleted again with the rest (all or nothing) is free.
      const takenTokens = new Set(got.taken.filter(isRateToken).map((h) => `${h.scope}#${h.index}`));
      this.unreserve(ids.filter((id) => isRateToken(id) && !takenTokens.has(`${id.scope}#${id.index}`)));
      return null;
    } catch (error) {
      // A token's insert may have landed: counted as taken (it frees with its window).
      this.unreserve(ids.filter((id) => !isRateToken(id)));
      throw error;
    }
  }

  /**
   * Whether an attempt may start now under slots just taken: the server's
   * time is still inside the window of each rate token among them.
   */
  mayStart(held: HeldSlots | null): boolean {
    return !held || this.rates.open(held.ids);
  }

  /** What an attempt started under `held` gives back when it ends: its slots, not its rate tokens (spent). */
  keptByAttempt(held: HeldSlots | null): HeldSlots | null {
    return withoutRateTokens(held);
  }

  /** Monotonic ms until a group held back by its rate limit may start again, or null. */
  rateWakeInMs(): number | null {
    return this.rates.takeWake();
  }

  /**
   * Keeps a lone rate token whose claim was lost (nothing started under it)
   * for the group's next claim in the same window; false when `held` is not
   * one (give it back then).
   */
  keepSpare(held: HeldSlots, group: string | null): boolean {
    if (group === null || held.ids.length !== 1 || !isRateToken(held.ids[0]!) || this.scopesOf(group).length > 0) return false;
    if (!this.rates.usable(held.ids[0]!)) return false;
    this.rates.noteTaken(held.ids[0]!);
    this.spares.set(group, [...(this.spares.get(group) ?? []), held]);
    return true;
  }

  /** A spare token of the group's current window, lent to the caller (see {@link keepSpare}); older ones are dropped (swept with their window). */
  private takeSpare(group: string | null): SlotId[] | null {
    if (group === null) return null;
    const spares = this.spares.get(group);
    while (spares && spares.length > 0) {
      const held = spares.shift()!;
      if (!this.rates.usable(held.ids[0]!)) continue;
      this.lent.set(keyOf(held.ids[0]!), { group, held });
      return [...held.ids];
    }
    return null;
  }

  /** The `global` scopes a task of `group` takes a slot of. */
  private scopesOf(group: string | null): string[] {
    return this.scopes.map((s) => s.scope).filter((scope) => scope === ALL || (group !== null && scope === groupScope(group)));
  }

  /** Gives slots back (one delete, fenced by their acquisition's nonce); also rate tokens nothing started under. */
  async release(held: HeldSlots): Promise<void> {
    for (const id of held.ids) this.held.get(id.scope)?.delete(id.index);
    for (const id of held.ids) if (isRateToken(id)) this.rates.unreserve(id);
    await this.store.releaseSlots(held);
  }

  /** Watches one holder of a full scope; evicts its slot once its claim is over or silent for a lease. */
  private async judge(h: SlotHolding, readAt: number): Promise<void> {
    const [claim, next] = await this.store.readLog(this.container, h.task, h.token, 2);
    const over = next !== undefined || (claim !== undefined && (claim.kind !== 'claimed' || claim.runnerId !== h.runnerId));
    // What the holder's heartbeats change: the claim's lease and progress.
    const seen = over ? 'over' : claim ? JSON.stringify([claim.leaseUntil, claim.leaseRenewedAt, claim.progress, claim.statusText]) : 'no claim';
    const before = this.watched.get(h.nonce);
    if (!before || before.seen !== seen) {
      // Counted from the end of the read that showed it: the holder wrote it before.
      this.watched.set(h.nonce, { seen, since: performance.now() });
      return;
    }
    // A live holder releases right after its outcome is recorded: an over
    // claim's slot is evicted only if still held a heartbeat later (else the
    // eviction and the release race, and one of them is a wasted delete).
    if (readAt - before.since < (over ? this.opts.heartbeatMs : this.opts.leaseMs)) return;
    if (await this.store.evictSlot(this.container, h)) this.held.get(h.scope)?.delete(h.index);
    this.watched.delete(h.nonce);
  }
}
