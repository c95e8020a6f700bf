import { createHash } from 'node:crypto';
import type { Connection } from 'mongoose';
import { assertSafeName } from '../definition/names.js';
import { InvalidLedgerItemError, InvalidOptionError, LedgerClaimLostError } from '../errors.js';
import type { LedgerClaimStore, LedgerEntry, LedgerItem, LedgerStore } from '../store/ledger-types.js';
import { defaultConnection } from '../store/mongo/models.js';
import { MongoLedgerStore } from '../store/mongo/ledger-store.js';
import { claimItem, resolveClaimOptions, type LedgerClaimOptions, type LedgerClaimResult } from './claims.js';

/** What {@link Ledger.runClaimed} did with the item. */
export type RunClaimedResult<T> =
  | { status: 'ran'; info: T; id: string }
  | { status: 'done'; entry: LedgerEntry }
  | { status: 'busy'; holder: string };

/** Ids per `findEntries` call of {@link Ledger.filterNew} on a store without `findIds`. */
const FIND_CHUNK = 1000;

/** Options of {@link Ledger.create}. */
export interface LedgerOptions {
  /** Names this ledger; items are remembered per name. */
  name: string;
  /** Mongoose connection to use. @defaultValue mongoose's default connection */
  connection?: Connection;
  /** Prefix of the collection name (`<prefix>_ledger`). @defaultValue 'pts' */
  collectionPrefix?: string;
  /** A ready store instead of a connection (for tests of other backends); claims need it to be a {@link LedgerClaimStore} too. */
  store?: LedgerStore;
}

/**
 * Remembers which remote files were ingested, keyed by URL, size and
 * checksum together: a file re-posted with other content is new again. An
 * item applied on top of another (an incremental over its full export) also
 * names that `basis`, so it is new again over a re-posted basis. Record
 * an item only once its work succeeded; a failed item is never recorded, so
 * the next run sees it as new and tries again.
 *
 * Two runs that see the same new item at once (two slots, two feeds) claim
 * it before working on it ({@link Ledger.claim}, {@link Ledger.runClaimed}):
 * the second one waits for the first or skips the item, and says so.
 */
export class Ledger {
  private constructor(
    /** This ledger's name. */
    readonly name: string,
    private readonly store: LedgerStore,
  ) {}

  private claimStore(): LedgerClaimStore {
    const s = this.store as Partial<LedgerClaimStore>;
    if (typeof s.insertClaim !== 'function') throw new InvalidOptionError('store', 'this ledger store keeps no claims (it is not a LedgerClaimStore)');
    return this.store as unknown as LedgerClaimStore;
  }

  /**
   * Opens a ledger (creates its collection if missing).
   * @throws {@link InvalidNameError} for a name that is empty, over 200 characters, `$`-prefixed or holds a dot
   */
  static async create(options: LedgerOptions): Promise<Ledger> {
    if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'must be an object');
    assertSafeName('ledger', options.name);
    const store =
      options.store ??
      (await MongoLedgerStore.create(options.connection ?? defaultConnection(), { collectionPrefix: options.collectionPrefix }));
    return new Ledger(options.name, store);
  }

  /**
   * The item's deterministic key: sha256 hex of `[ledger, url, size, checksum]`,
   * with `basis` appended when the item has one.
   * @throws {@link InvalidLedgerItemError} for a malformed item
   */
  keyOf(item: LedgerItem): string {
    const { url, size, checksum, basis } = normalize(item);
    const parts = basis === undefined ? [this.name, url, size, checksum] : [this.name, url, size, checksum, basis];
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  }

  /** True when this exact item (url, size, checksum and basis) was recorded. */
  async has(item: LedgerItem): Promise<boolean> {
    return (await this.store.findEntries([this.keyOf(item)])).length > 0;
  }

  /**
   * The items not recorded yet, in their given order (duplicates in the
   * input kept once). Reads in bounded batches whatever the number of items
   * (100,000 items: one `$in` per 1,000 on MongoDB, one pass over the
   * ledger's ids on FerretDB; see `MongoLedgerStore.findIds`), never one
   * read per item all at once.
   * @throws {@link InvalidLedgerItemError} for a malformed item
   * @throws OperationTimeoutError when a read got no reply in time and retries ran out
   */
  async filterNew<T extends LedgerItem>(items: readonly T[]): Promise<T[]> {
    const keyed = new Map<string, T>();
    for (const item of items) {
      const key = this.keyOf(item);
      if (!keyed.has(key)) keyed.set(key, item);
    }
    const keys = [...keyed.keys()];
    let known: Set<string>;
    if (this.store.findIds) known = await this.store.findIds(keys);
    else {
      known = new Set();
      for (let i = 0; i < keys.length; i += FIND_CHUNK) {
        for (const e of await this.store.findEntries(keys.slice(i, i + FIND_CHUNK))) known.add(e.id);
      }
    }
    return [...keyed].filter(([key]) => !known.has(key)).map(([, item]) => item);
  }

  /**
   * Records an item as done; idempotent (a second call changes nothing and
   * returns `recorded: false`). `info` is stored with the first record only.
   */
  async record(item: LedgerItem, info?: unknown): Promise<{ recorded: boolean; id: string }> {
    const { url, size, checksum, basis } = normalize(item);
    const id = this.keyOf(item);
    const recorded = await this.store.insertEntry({
      id, ledger: this.name, url, size, checksum, ...(basis === undefined ? {} : { basis }), recordedAt: new Date(), info: info ?? null,
    });
    return { recorded, id };
  }

  /**
   * Forgets recorded items, so they count as new again: those recorded before
   * `recordedBefore` (pruning), or all of them (starting over). Returns how many.
   * An item forgotten while its file is still listed by the feed is ingested again.
   * The claims of recorded items go first ({@link forgetClaims}), while their entries still say "done".
   */
  async forget(o: { recordedBefore?: Date } = {}): Promise<number> {
    return (await this.forgetCounted(o)).entries;
  }

  /**
   * {@link forget}, returning how many entries and how many claim documents
   * went (`claims` is 0 for a store that keeps no claims). The claims are
   * read once: calling {@link forgetClaims} first would scan them twice.
   */
  async forgetCounted(o: { recordedBefore?: Date } = {}): Promise<{ entries: number; claims: number }> {
    const s = this.store as Partial<LedgerClaimStore>;
    const claims = typeof s.deleteClaimsOfRecorded === 'function' ? await this.forgetClaims() : 0;
    return { entries: await this.store.deleteEntries(this.name, o.recordedBefore), claims };
  }

  /**
   * Deletes the claim documents of recorded items (retention): a recorded item
   * is never worked on again, so its claims only take room. Returns how many went.
   * @throws {@link InvalidOptionError} when the store keeps no claims
   */
  forgetClaims(): Promise<number> {
    return this.claimStore().deleteClaimsOfRecorded(this.name);
  }

  /**
   * Releases every claim `holder` still holds in this ledger, so other
   * claimers need not wait out their leases: call it when the holder's work
   * ended without recording its items (a run that failed for good). Returns
   * how many claims it released. One scan of this ledger's claims.
   * @throws {@link InvalidOptionError} when `holder` is not a non-empty string, or the store keeps no claims
   */
  releaseClaimsOf(holder: string): Promise<number> {
    if (typeof holder !== 'string' || holder.length === 0) throw new InvalidOptionError('holder', 'must be a non-empty string');
    return this.claimStore().releaseClaimsOf(this.name, holder);
  }

  /**
   * Claims an item before working on it: `claimed` (work, renew the claim
   * within `leaseMs`, record, release), `done` (recorded already, maybe while
   * waiting), or `busy` (another live claimer holds it; only without `wait`).
   * A dead claimer's item frees itself `leaseMs` after its last renewal, on
   * the database server's clock. Claims are exact-`_id` inserts in
   * `<prefix>_ledger_claims`, one document per claim generation.
   * @throws {@link InvalidLedgerItemError} for a malformed item; {@link InvalidOptionError} for bad options
   */
  claim(item: LedgerItem, options: LedgerClaimOptions): Promise<LedgerClaimResult> {
    const key = this.keyOf(item);
    return claimItem(this.claimStore(), this.name, key, async () => (await this.store.findEntries([key]))[0] ?? null, options);
  }

  /**
   * Claims the item, runs `work` while renewing the claim every `leaseMs / 3`,
   * records the item with what `work` returned as `info`, and releases the
   * claim (also when `work` throws, which rethrows: nothing is recorded). The
   * signal given to `work` aborts when the claim is lost to a takeover.
   * @throws whatever `work` throws; {@link LedgerClaimLostError} when the claim was lost while working
   */
  async runClaimed<T>(item: LedgerItem, work: (signal: AbortSignal) => Promise<T>, options: LedgerClaimOptions): Promise<RunClaimedResult<T>> {
    const o = resolveClaimOptions(options);
    const got = await this.claim(item, o);
    if (got.status !== 'claimed') return got;
    const claim = got.claim;
    const lost = new AbortController();
    let lostError: Error | null = null;
    const timer = setInterval(() => {
      claim.renew().catch((error: Error) => {
        if (error instanceof LedgerClaimLostError) {
          lostError = error;
          lost.abort(error);
        }
      });
    }, o.leaseMs / 3);
    try {
      const info = await work(lost.signal);
      if (lostError) throw lostError;
      const { id } = await this.record(item, info);
      return { status: 'ran', info, id };
    } finally {
      clearInterval(timer);
      await claim.release().catch(() => undefined);
    }
  }

  /** Every recorded item of this ledger, oldest first (a collection scan on FerretDB). */
  list(): Promise<LedgerEntry[]> {
    return this.store.listEntries(this.name);
  }
}

function normalize(item: LedgerItem): LedgerItem {
  if (!item || typeof item !== 'object') throw new InvalidLedgerItemError(item, 'must be an object { url, size, checksum }');
  const { url, size, checksum } = item;
  if (typeof url !== 'string' || url.length === 0) throw new InvalidLedgerItemError(item, '"url" must be a non-empty string');
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new InvalidLedgerItemError(item, `"size" must be a non-negative integer number of bytes, got ${String(size)}`);
  }
  if (typeof checksum !== 'string' || checksum.trim().length === 0) {
    throw new InvalidLedgerItemError(item, '"checksum" must be a non-empty string (md5 hex or ETag)');
  }
  const c = checksum.trim();
  const normalized: LedgerItem = { url, size, checksum: /^[0-9a-fA-F]{32}$/.test(c) ? c.toLowerCase() : c };
  const { basis } = item;
  if (basis !== undefined) {
    if (typeof basis !== 'string' || basis.length === 0) throw new InvalidLedgerItemError(item, '"basis", when given, must be a non-empty string');
    normalized.basis = basis;
  }
  return normalized;
}
