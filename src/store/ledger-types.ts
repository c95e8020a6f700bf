/** One remote file as the ledger identifies it. */
export interface LedgerItem {
  /** Where the file was fetched from. */
  url: string;
  /** Size in bytes. */
  size: number;
  /** MD5 hex (lower-cased when given as 32 hex digits) or the server's ETag, compared as given otherwise. */
  checksum: string;
  /**
   * What this item was applied on top of, when that decides its result: e.g.
   * `<full export path>@<md5>` for an incremental export, which must be applied
   * again over a re-posted full. The same file over another basis is a new
   * item. Absent: the item stands alone (its key is the same as before this field existed).
   */
  basis?: string;
}

/** A recorded item. */
export interface LedgerEntry extends LedgerItem {
  /** Deterministic key: sha256 hex of the ledger name and the item. */
  id: string;
  ledger: string;
  recordedAt: Date;
  /** Free BSON-serializable data given to `record()` (e.g. rows imported), or null. */
  info: unknown;
}

/** Persistence of ledgers: exact-key reads and idempotent inserts. */
export interface LedgerStore {
  /** Inserts the entry unless its id exists; true when this call inserted it. */
  insertEntry(entry: LedgerEntry): Promise<boolean>;
  /** The entries among `ids` that exist. */
  findEntries(ids: string[]): Promise<LedgerEntry[]>;
  /**
   * The ids among `ids` that exist, in bounded memory and a bounded number
   * of commands in flight whatever the number of ids. Optional: without it
   * `Ledger.filterNew` calls {@link findEntries} on chunks of 1,000 ids.
   */
  findIds?(ids: readonly string[]): Promise<Set<string>>;
  /** Every entry of one ledger, oldest first (scans). */
  listEntries(ledger: string): Promise<LedgerEntry[]>;
  /** Removes the entries of one ledger recorded before `recordedBefore` (all when omitted); returns how many. */
  deleteEntries(ledger: string, recordedBefore?: Date): Promise<number>;
}

/**
 * One generation of a ledger item's claim: `_id` is `<item key>#<generation>`.
 * A takeover of a dead claimer's item inserts the next generation (an exact
 * `_id` insert, so of racing takers one wins) instead of changing the old one.
 */
export interface LedgerClaimRecord {
  key: string;
  generation: number;
  ledger: string;
  /** Who works on the item (e.g. a slot's container name). */
  holder: string;
  /** How long the claim lives after its last renewal, in ms. */
  leaseMs: number;
  /** The last renewal, on the database server's clock when it tells its time. */
  renewedAt: Date;
  /** True once the holder let it go (the item was recorded, or its work failed). */
  released: boolean;
}

/** Persistence of ledger item claims: exact `_id` inserts, reads and updates only. */
export interface LedgerClaimStore {
  /** Inserts generation `generation` of the claim; false when it exists. */
  insertClaim(claim: Omit<LedgerClaimRecord, 'renewedAt' | 'released'>): Promise<boolean>;
  /** One generation, or null. */
  getClaim(key: string, generation: number): Promise<LedgerClaimRecord | null>;
  /** Stamps a renewal (the server's time); false when no such unreleased generation of `holder` exists. */
  renewClaim(key: string, generation: number, holder: string): Promise<boolean>;
  /** Marks the generation released (idempotent). */
  releaseClaim(key: string, generation: number, holder: string): Promise<void>;
  /** The database server's time now; null when it does not tell it. */
  serverTime(): Promise<Date | null>;
  /**
   * Deletes every claim generation of the items of `ledger` that are recorded
   * (retention): a recorded item is never worked on again, whatever its claims
   * say, so no live claim can be lost. Returns how many claim documents went.
   */
  deleteClaimsOfRecorded(ledger: string): Promise<number>;
  /** Marks every unreleased claim of `holder` in `ledger` released (idempotent); returns how many it released. */
  releaseClaimsOf(ledger: string, holder: string): Promise<number>;
}
