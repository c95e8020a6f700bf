import type { HeldSlots, SlotId, TaskStore } from '../store/types.js';
import type { RateLimit } from './runner-options.js';

/** The server's time is asked again after this long (ms): one `hello` per runner per interval. */
const RESYNC_MS = 30_000;
/** `hello`s per sync; the one with the shortest round trip is kept. */
const CLOCK_SAMPLES = 3;
/** Delay (ms) before a runner that held tokens back for its share tries again (their claims are settled by then). */
const NEXT_STEP_MS = 5;
/**
 * Spent tokens are swept (one delete each time) by each runner once per
 * this long or once per window if longer (ms), times the runners it knows
 * (so the container's runners together sweep about that often): a group
 * keeps at most about `max × (runners × SWEEP_MIN_MS / perMs + 2)` token
 * documents.
 */
const SWEEP_MIN_MS = 2_000;

/** Token indexes beyond this are never owned (see `ownedIndexes`): drawn at random. */
const MAX_OWNED_INDEXES = 1024;

const PREFIX = 'rate:';
/** Scope of the tokens of one window of a group's rate limit. */
const scopeOf = (group: string, window: number): string => `${PREFIX}${group}:${window}`;
/** Whether a slot is a rate-limit token. */
export const isRateToken = (id: SlotId): boolean => id.scope.startsWith(PREFIX);

/**
 * Margin (ms) kept before a window's end: an attempt whose start would come
 * later than that is not started under the window's token. Covers the few
 * turns of the event loop between the check and the handler's first line.
 */
export const rateGateMarginMs = (perMs: number): number => Math.max(1, Math.min(50, Math.floor(perMs / 20)));

/**
 * This runner's side of the rate limits of groups (`groups: { g: { rate:
 * { max, perMs } } }`), across every runner of the container.
 *
 * Fixed windows of the database server's clock: window `k` is
 * [k·perMs, (k+1)·perMs) ms since the epoch on the server, and holds `max`
 * tokens, one slot document each (scope `rate:<group>:<k>`, index 0..max-1,
 * unique like every slot: taking one is an insert, a duplicate key means
 * taken). Each attempt of the group (retries and takeovers included) starts
 * only under a token of the window its start falls in:
 * - a token of window k is taken only once the server's time is surely in k
 *   (this runner's estimate of it, minus its error, is past k's start);
 * - after the claim, the attempt starts only if the estimate plus its error
 *   and {@link rateGateMarginMs} is still before k's end; otherwise the claim
 *   is given back unstarted (the token is spent).
 *
 * The estimate is the server's time from `hello` (TaskStore.serverTime)
 * moved on by this process's monotonic clock since, never its wall clock;
 * its error is half the round trip of that `hello` (plus 1 ms of the
 * server's resolution). Tokens are never released once an attempt started
 * under them; a token whose claim was lost is given back. Tokens carry
 * `expiresAt`, their window's end: any runner's sweep deletes those of
 * windows that are over, whoever spent them (a dead runner's included).
 */
export class RateWindows {
  private readonly limits: Map<string, RateLimit>;
  /** What this runner knows of the current window of each group: its index, and the token indexes taken or reserved. */
  private readonly windows = new Map<string, RateWindow>();
  /** The server's time (ms) at monotonic time `mono`, give or take `errorMs`. */
  private clock: { serverAt: number; mono: number; errorMs: number } | null = null;
  private lastSweepAt = -Infinity;
  /** Tokens reserved here whose fate is not known yet (`scope#index`), by group. */
  private readonly pending = new Map<string, Set<string>>();
  /**
   * Runners sharing the container as far as this one knows (itself
   * included): a runner keeps at most its share of a window's tokens in
   * flight, so runners do not all insert for the same ones.
   */
  private peers: string[] = [];
  /** The token indexes this runner owns among its peers, by `max` (see {@link ownedIndexes}). */
  private owned = new Map<number, number[]>();
  /** Monotonic time before which a group held back by its rate limit has nothing to try; null when none is. */
  private wake: number | null = null;

  constructor(
    private readonly store: TaskStore,
    private readonly container: string,
    rateGroups: Record<string, RateLimit>,
    /** Wall clock used only when the server does not tell its time. */
    private readonly wallClock: { now(): number },
    private readonly runnerId: string,
  ) {
    this.limits = new Map(Object.entries(rateGroups));
  }

  get enabled(): boolean {
    return this.limits.size > 0;
  }

  /** The ids of the runners sharing the container as far as this one knows (its own included). */
  setPeers(ids: readonly string[]): void {
    const sorted = [...new Set([...ids, this.runnerId])].sort();
    if (sorted.join('\n') === this.peers.join('\n')) return;
    this.peers = sorted;
    this.owned.clear();
  }

  private get runners(): number {
    return Math.max(1, this.peers.length);
  }

  /** Whether tasks of `group` are rate-limited. */
  has(group: string | null): group is string {
    return group !== null && this.limits.has(group);
  }

  /** Keeps the server-time estimate fresh (a `hello` every 30 s), and sweeps the tokens of windows that are over. */
  async refresh(): Promise<void> {
    if (!this.enabled) return;
    if (!this.clock || performance.now() - this.clock.mono >= RESYNC_MS) await this.syncClock();
    const every = this.runners * Math.max(SWEEP_MIN_MS, Math.min(...[...this.limits.values()].map((l) => l.perMs)));
    if (performance.now() - this.lastSweepAt >= every) {
      this.lastSweepAt = performance.now();
      await this.store.sweepSlots(this.container, new Date(this.now() - this.clock!.errorMs));
    }
  }

  /** The server's time now as estimated here (ms since the epoch). */
  private now(): number {
    const c = this.clock!;
    return c.serverAt + (performance.now() - c.mono);
  }

  /** Asks the server's time a few times and keeps the reply with the shortest round trip (the smallest error). */
  private async syncClock(): Promise<void> {
    if (!this.store.serverTime) {
      this.clock = { serverAt: this.wallClock.now(), mono: performance.now(), errorMs: 0 };
      return;
    }
    let best: { serverAt: number; mono: number; errorMs: number } | null = null;
    for (let i = 0; i < CLOCK_SAMPLES; i++) {
      const before = performance.now();
      const at = await this.store.serverTime();
      const after = performance.now();
      if (!at) break;
      const errorMs = (after - before) / 2 + 1;
      if (!best || errorMs < best.errorMs) best = { serverAt: at.getTime(), mono: (before + after) / 2, errorMs };
    }
    this.clock = best ?? { serverAt: this.wallClock.now(), mono: performance.now(), errorMs: 0 };
  }

  /**
   * Reserves a token of the current window for a task of `group`, or null
   * when the window is full as far as this runner knows, or when the server's
   * time may still be in the window before (it then wakes at the next window).
   */
  reserve(group: string): SlotId | null {
    const limit = this.limits.get(group)!;
    if (!this.clock) return null;
    const now = this.now();
    const window = Math.floor((now + this.clock.errorMs) / limit.perMs);
    const start = window * limit.perMs;
    if (now - this.clock.errorMs < start) return this.wakeAt(start + this.clock.errorMs - now);
    const w = this.windowOf(group, window);
    const end = start + limit.perMs;
    // No time left in the window for a start (see `open`): the next one.
    const late = now + this.clock.errorMs + rateGateMarginMs(limit.perMs) >= end;
    if (late || w.closed || w.taken.size >= limit.max) return this.wakeAt(end + this.clock.errorMs - now);
    const pending = this.pendingOf(group, window);
    // Its share in flight already: the rest waits for what those learn (a taken token, a start), in the next step.
    if (pending.size >= Math.max(1, Math.ceil(limit.max / this.runners))) return this.wakeAt(NEXT_STEP_MS);
    // The indexes this runner owns first: runners that know each other take
    // disjoint tokens at a window's start, when each knows nothing yet of
    // what the others took.
    let index = this.ownedIndexes(limit.max).find((i) => !w.taken.has(i)) ?? -1;
    // Else a random free index: runners that know the same rarely pick the same one
    // (drawn, not listed: `max` may be large and few taken).
    for (let tries = 0; index < 0 && tries < 16; tries++) {
      const i = Math.floor(Math.random() * limit.max);
      if (!w.taken.has(i)) index = i;
    }
    if (index < 0) {
      const free = Array.from({ length: limit.max }, (_, i) => i).filter((i) => !w.taken.has(i));
      index = free[Math.floor(Math.random() * free.length)]!;
    }
    w.taken.add(index);
    const id = { scope: scopeOf(group, window), index, expiresAt: new Date(end) };
    pending.add(tokenKey(id));
    return id;
  }

  /**
   * The token indexes of a window of `max` this runner owns among its peers
   * (their ids sorted): `rank, rank + runners, …`, disjoint and balanced when
   * the runners know the same peers. Alone, a runner owns them all. None at
   * or above {@link MAX_OWNED_INDEXES} (those are drawn at random).
   */
  private ownedIndexes(max: number): number[] {
    let own = this.owned.get(max);
    if (own) return own;
    own = [];
    const rank = Math.max(0, this.peers.indexOf(this.runnerId));
    for (let i = rank; i < Math.min(max, MAX_OWNED_INDEXES); i += this.runners) own.push(i);
    this.owned.set(max, own);
    return own;
  }

  /** Gives back a reservation that was not inserted. */
  unreserve(id: SlotId): void {
    this.settle(id);
    const { group, window } = parse(id.scope);
    const w = this.windows.get(group);
    if (w && w.window === window) w.taken.delete(id.index);
  }

  /** Whether an attempt could still start under this token now (its window is not over, margin included). */
  usable(id: SlotId): boolean {
    if (!this.clock || !id.expiresAt) return false;
    const limit = this.limits.get(parse(id.scope).group);
    return limit !== undefined && this.now() + this.clock.errorMs + rateGateMarginMs(limit.perMs) < id.expiresAt.getTime();
  }

  /** Notes a token found taken by another runner, or kept by this one (it stays counted). */
  noteTaken(id: SlotId): void {
    this.settle(id);
    const { group, window } = parse(id.scope);
    this.windowOf(group, window).taken.add(id.index);
  }

  /**
   * Whether an attempt under these tokens may start now: the server's time
   * is surely still inside each token's window, with a margin.
   */
  open(ids: readonly SlotId[]): boolean {
    for (const id of ids) {
      if (!isRateToken(id)) continue;
      const { group, window } = parse(id.scope);
      const limit = this.limits.get(group)!;
      this.settle(id);
      if (this.now() + this.clock!.errorMs + rateGateMarginMs(limit.perMs) >= id.expiresAt!.getTime()) {
        // Too late in this window: no more tries in it.
        const w = this.windowOf(group, window);
        w.closed = true;
        this.wakeAt(id.expiresAt!.getTime() + this.clock!.errorMs - this.now());
        return false;
      }
    }
    return true;
  }

  /** Monotonic ms until a group held back by its rate limit may start again, or null; cleared by reading it. */
  takeWake(): number | null {
    const w = this.wake;
    this.wake = null;
    return w === null ? null : Math.max(0, w - performance.now());
  }

  private wakeAt(ms: number): null {
    const at = performance.now() + Math.max(0, ms);
    this.wake = this.wake === null ? at : Math.min(this.wake, at);
    return null;
  }

  /** This runner's tokens in flight in `window` of `group` (those of earlier windows are forgotten). */
  private pendingOf(group: string, window: number): Set<string> {
    const p = this.pending.get(group);
    if (p && [...p].every((k) => parse(k.slice(0, k.lastIndexOf('#'))).window === window)) return p;
    const fresh = new Set([...(p ?? [])].filter((k) => parse(k.slice(0, k.lastIndexOf('#'))).window === window));
    this.pending.set(group, fresh);
    return fresh;
  }

  /** A token's fate is known: no longer in flight. */
  private settle(id: SlotId): void {
    this.pending.get(parse(id.scope).group)?.delete(tokenKey(id));
  }

  private windowOf(group: string, window: number): RateWindow {
    let w = this.windows.get(group);
    if (!w || w.window < window) this.windows.set(group, (w = { window, taken: new Set(), closed: false }));
    // A token of an older window learnt late: nothing to keep.
    return w.window === window ? w : { window, taken: new Set(), closed: false };
  }
}

/** `held` without its rate tokens: what the attempt gives back when it ends (tokens it started under stay spent). */
export function withoutRateTokens(held: HeldSlots | null): HeldSlots | null {
  if (!held) return null;
  const ids = held.ids.filter((id) => !isRateToken(id));
  return ids.length === 0 ? null : ids.length === held.ids.length ? held : { ...held, ids };
}

/** What a runner knows of the current window of a group. */
interface RateWindow {
  window: number;
  /** Token indexes taken (here or, as learnt from duplicates, elsewhere) or reserved here. */
  taken: Set<number>;
  /** A start was refused for the window's end: no more tries in it. */
  closed: boolean;
}

const tokenKey = (id: SlotId): string => `${id.scope}#${id.index}`;


function parse(scope: string): { group: string; window: number } {
  const rest = scope.slice(PREFIX.length);
  const at = rest.lastIndexOf(':');
  return { group: rest.slice(0, at), window: Number(rest.slice(at + 1)) };
}
