/** One remote file as the ledger identifies it. */
export interface LedgerItem {
  /** Where the file was fetched from. */
  url: string;
  /** Size in bytes. */
  size: number;
  /** MD5 hex (lower-cased when given as 32 hex digits) or the server's ETag, compared as given otherwise. */
  checksum: string;
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
}
