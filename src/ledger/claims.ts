import { InvalidOptionError, LedgerClaimLostError } from '../errors.js';
import type { LedgerClaimRecord, LedgerClaimStore, LedgerEntry } from '../store/ledger-types.js';

/** Options of `Ledger.claim` and `Ledger.runClaimed`. */
export interface LedgerClaimOptions {
  /** Who works on the item, e.g. the slot's container name (a holder may claim again what it holds). */
  holder: string;
  /**
   * How long a claim lives after its last renewal, in ms, judged on the
   * database server's clock: a claimer that died frees its item this long after
   * its last renewal. `runClaimed` renews every `leaseMs / 3`.
   * @defaultValue 60000
   */
  leaseMs?: number;
  /**
   * When another live claimer holds the item: `false` returns `busy` at once;
   * `true` waits (polling every `pollMs`) until it is recorded (`done`), or
   * released or expired (then claims it).
   * @defaultValue false
   */
  wait?: boolean;
  /** Interval between polls while waiting, in ms. @defaultValue 1000 */
  pollMs?: number;
  /** Called once when the item is found held by another claimer (to say so), with its holder. */
  onBusy?: (holder: string) => void;
  /** Stops waiting (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** What a claim attempt found. */
export type LedgerClaimResult =
  | { status: 'claimed'; claim: LedgerClaim }
  | { status: 'done'; entry: LedgerEntry }
  | { status: 'busy'; holder: string };

/** A held claim of one ledger item: renew it while working, release it after recording (or failing). */
export class LedgerClaim {
  constructor(
    private readonly store: LedgerClaimStore,
    /** The item's key (see `Ledger.keyOf`). */
    readonly key: string,
    /** The claim's generation (each takeover of a dead claimer's item adds one). */
    readonly generation: number,
    readonly holder: string,
  ) {}

  /**
   * Renews the lease (a server-stamped write, then one exact read).
   * @throws {@link LedgerClaimLostError} when another claimer took the item over after this claim expired
   */
  async renew(): Promise<void> {
    const next = await this.store.getClaim(this.key, this.generation + 1);
    const renewed = next === null && (await this.store.renewClaim(this.key, this.generation, this.holder));
    if (!renewed) throw new LedgerClaimLostError(this.key, this.generation, next?.holder ?? 'nobody (released)');
  }

  /** Lets the item go (idempotent). */
  release(): Promise<void> {
    return this.store.releaseClaim(this.key, this.generation, this.holder);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Validated claim options. */
export function resolveClaimOptions(o: LedgerClaimOptions): Required<Omit<LedgerClaimOptions, 'onBusy' | 'signal'>> & LedgerClaimOptions {
  if (!o || typeof o.holder !== 'string' || o.holder.length === 0) throw new InvalidOptionError('holder', 'must be a non-empty string');
  const leaseMs = o.leaseMs ?? 60_000;
  if (!Number.isFinite(leaseMs) || leaseMs < 100) throw new InvalidOptionError('leaseMs', `must be a number of ms >= 100, got ${String(leaseMs)}`);
  const pollMs = o.pollMs ?? 1000;
  if (!Number.isFinite(pollMs) || pollMs <= 0) throw new InvalidOptionError('pollMs', `must be a positive number of ms, got ${String(pollMs)}`);
  return { ...o, leaseMs, pollMs, wait: o.wait ?? false };
}

/**
 * Claims the item with `key`: finds its newest claim generation (exact `_id`
 * reads), and inserts the next one when there is none, or the newest was
 * released or expired on the server's clock. The insert of one `_id` decides
 * among racing claimers, with no find-and-modify (FerretDB v1 has no atomic one).
 * `isDone` is asked before and after the claim, so an item recorded meanwhile
 * is never worked on again.
 */
export async function claimItem(
  store: LedgerClaimStore,
  ledger: string,
  key: string,
  isDone: () => Promise<LedgerEntry | null>,
  options: LedgerClaimOptions,
): Promise<LedgerClaimResult> {
  const o = resolveClaimOptions(options);
  let announced = false;
  for (;;) {
    o.signal?.throwIfAborted();
    const done = await isDone();
    if (done) return { status: 'done', entry: done };
    const newest = await newestClaim(store, key);
    const generation = newest ? newest.generation + 1 : 0;
    let holder: string | null = null;
    if (newest && !newest.released && newest.holder === o.holder) {
      // Our own claim (a resumed task of the same holder): keep it.
      if (await store.renewClaim(key, newest.generation, o.holder)) return claimed(store, key, newest.generation, o.holder, isDone);
    } else if (newest && !newest.released && !(await expired(store, newest))) {
      holder = newest.holder;
    } else if (await store.insertClaim({ key, generation, ledger, holder: o.holder, leaseMs: o.leaseMs })) {
      return claimed(store, key, generation, o.holder, isDone);
    }
    if (holder !== null) {
      if (!announced) o.onBusy?.(holder);
      announced = true;
      if (!o.wait) return { status: 'busy', holder };
    }
    await sleep(holder === null ? 10 : o.pollMs, o.signal); // lost an insert race: look again at once
  }
}

async function claimed(
  store: LedgerClaimStore,
  key: string,
  generation: number,
  holder: string,
  isDone: () => Promise<LedgerEntry | null>,
): Promise<LedgerClaimResult> {
  const claim = new LedgerClaim(store, key, generation, holder);
  const done = await isDone(); // recorded between our first look and the claim
  if (!done) return { status: 'claimed', claim };
  await claim.release();
  return { status: 'done', entry: done };
}

/** The newest generation, by exact `_id` reads 0, 1, 2… (one more per takeover; cleaned up with the ledger). */
async function newestClaim(store: LedgerClaimStore, key: string): Promise<LedgerClaimRecord | null> {
  let newest: LedgerClaimRecord | null = null;
  for (let g = 0; ; g++) {
    const c = await store.getClaim(key, g);
    if (!c) return newest;
    newest = c;
  }
}

async function expired(store: LedgerClaimStore, c: LedgerClaimRecord): Promise<boolean> {
  const now = (await store.serverTime()) ?? new Date();
  return now.getTime() - c.renewedAt.getTime() > c.leaseMs;
}
