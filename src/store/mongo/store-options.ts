import { MAX_TIMER_MS } from '../../definition/options.js';
import { TaskStatusError } from '../../errors.js';
import { retryTransient } from '../retry.js';

/** A write concern, as the driver takes it. */
export interface StoreWriteConcern {
  w?: number | 'majority';
  /** How long the server waits for `w` before answering with a write-concern error, in ms. */
  wtimeoutMS?: number;
  j?: boolean;
}

/** Options of {@link MongoStore.create}. */
export interface MongoStoreOptions {
  /** Prefix of the collection names (`<prefix>_containers`, …). @defaultValue 'pts' */
  collectionPrefix?: string;
  /**
   * Create the collections and indexes if missing. Readers (status, the CLI)
   * turn it off so that looking never writes.
   * @defaultValue true
   */
  ensureIndexes?: boolean;
  /**
   * How long to wait for the connection to reach a server before failing with
   * {@link ServerUnreachableError}, in ms.
   * @defaultValue 5000
   */
  serverSelectionTimeoutMs?: number;
  /**
   * Deadline of each engine operation, in ms: a write or point read with no
   * reply by then counts as a transient error and is retried (engine writes
   * are idempotent). Reads of a whole container get six times as long.
   * @defaultValue 10000
   */
  operationTimeoutMs?: number;
  /**
   * How long one log append or attempt update keeps retrying transient errors
   * (network, timeout, not primary), in ms, before the error is thrown. The
   * engine retries an attempt's outcome further, for as long as its lease lasts.
   * @defaultValue 10000
   */
  writeRetryMs?: number;
  /**
   * Write concern of the engine's writes. `majority` means an acknowledged
   * success cannot be rolled back by a failover (and re-run); `{ w: 1 }` is
   * faster on a replica set but may lose the last writes when the primary
   * changes. Servers without replication (a standalone, FerretDB) treat both alike.
   * @defaultValue { w: 'majority' }
   */
  writeConcern?: StoreWriteConcern;
  /**
   * Read concern of the engine's reads: `majority` never sees a write a
   * failover could roll back; `local` is a little faster and may.
   * @defaultValue 'majority'
   */
  readConcern?: 'majority' | 'local' | 'available';
  /**
   * Read preference. Leases are judged from reads, so reading a lagging
   * secondary could take over a healthy task: keep `primary` unless the
   * store only serves status displays.
   * @defaultValue 'primary'
   */
  readPreference?: 'primary' | 'primaryPreferred' | 'secondary' | 'secondaryPreferred' | 'nearest';
  /**
   * How a whole container is read. `by-filter`: one `find` per collection on
   * `container` (served by an index on MongoDB; a scan of every container's
   * documents on FerretDB v1). `by-key`: containers of up to 64 tasks are
   * read by exact `_id`s (their task directory, tasks and log positions, about
   * four point reads per task), whatever else the database holds. `auto`:
   * `by-key` on FerretDB, `by-filter` elsewhere. See docs/performance.md.
   * @defaultValue 'auto'
   */
  containerReads?: 'auto' | 'by-key' | 'by-filter';
  /**
   * One causally consistent session for the store's reads and writes (see
   * docs/correctness.md, "Causal consistency"): after a failover, a read
   * still sees every write the store made before it. `'auto'` uses it where
   * the server has causal consistency (a replica set or a sharded cluster,
   * detected with `hello`), `'always'` whatever the server says, `'never'` not at all.
   * @defaultValue 'auto'
   */
  causalConsistency?: 'auto' | 'always' | 'never';
  /** Wall clock for the times the store writes (claims, leases, outcomes), in ms since the epoch. @defaultValue Date */
  clock?: { now(): number };
}

/** Store options with defaults filled in. */
export interface ResolvedStoreOptions {
  operationTimeoutMs: number;
  writeRetryMs: number;
  writeConcern: StoreWriteConcern;
  readConcern: string;
  readPreference: string;
  clock: { now(): number };
}

/** Fills in defaults and checks the timer options (positive, at most 2^31-1 ms). */
export function resolveStoreOptions(options: MongoStoreOptions): ResolvedStoreOptions {
  for (const key of ['operationTimeoutMs', 'writeRetryMs'] as const) {
    const v = options[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= MAX_TIMER_MS)) {
      throw new TaskStatusError('PTS_INVALID_OPTION', `Invalid option "${key}": must be a positive number of ms up to ${MAX_TIMER_MS}, got ${String(v)}`);
    }
  }
  return {
    operationTimeoutMs: options.operationTimeoutMs ?? 10_000,
    writeRetryMs: options.writeRetryMs ?? 10_000,
    writeConcern: options.writeConcern ?? { w: 'majority' },
    readConcern: options.readConcern ?? 'majority',
    readPreference: options.readPreference ?? 'primary',
    clock: options.clock ?? Date,
  };
}

/**
 * The options of a store's operations alone (deadline, retries, write
 * concern, causal session), for the schedule and ledger stores.
 */
export type OperationOptions = Pick<MongoStoreOptions, 'operationTimeoutMs' | 'writeRetryMs' | 'writeConcern' | 'causalConsistency'>;

/**
 * Runs an idempotent write under the operation deadline (`operationTimeoutMs`
 * per try), retrying transient errors for up to `writeRetryMs` in all.
 * @throws OperationTimeoutError when the last try got no reply in time
 * @throws the first non-transient error (a duplicate key, a validation error) at once
 */
export function retryWrite<T>(o: ResolvedStoreOptions, operation: string, fn: (options: { writeConcern: StoreWriteConcern }) => Promise<T>): Promise<T> {
  const options = { writeConcern: o.writeConcern };
  return retryTransient(() => fn(options), { operation, timeoutMs: o.operationTimeoutMs, budgetMs: o.writeRetryMs });
}

/**
 * Runs a read under the operation deadline (`scale` times `operationTimeoutMs`
 * per try), retrying transient errors for the longer of one deadline and `writeRetryMs`.
 * @throws OperationTimeoutError when the last try got no reply in time
 */
export function retryRead<T>(o: ResolvedStoreOptions, operation: string, fn: () => Promise<T>, scale = 1): Promise<T> {
  const timeoutMs = o.operationTimeoutMs * scale;
  return retryTransient(fn, { operation, timeoutMs, budgetMs: Math.max(timeoutMs, o.writeRetryMs) });
}

/** Save options carrying a write concern (for `Model.create`, which takes `w`/`wtimeout`/`j`). */
export function saveOptions(writeConcern: StoreWriteConcern): Record<string, unknown> {
  const { w, wtimeoutMS, j } = writeConcern;
  return Object.fromEntries(Object.entries({ w, wtimeout: wtimeoutMS, j }).filter(([, v]) => v !== undefined));
}
