import { type Connection, type Model, Schema } from 'mongoose';
import { InvalidOptionError } from '../../errors.js';
import pLimit from 'p-limit';
import type { LedgerClaimRecord, LedgerClaimStore, LedgerEntry, LedgerStore } from '../ledger-types.js';
import { serverTime } from './server-clock.js';
import { isDuplicateKeyError } from './keys.js';
import { isFerretDb } from './server-kind.js';
import { CausalSession } from './causal-session.js';
import { StoreOperations } from './operations.js';
import { resolveStoreOptions, type OperationOptions } from './store-options.js';

type LedgerDoc = Omit<LedgerEntry, 'id'> & { _id: string };

const ledgerSchema = new Schema<LedgerDoc>(
  {
    _id: { type: String, required: true },
    ledger: { type: String, required: true },
    url: { type: String, required: true },
    size: { type: Number, required: true },
    checksum: { type: String, required: true },
    basis: { type: String, required: false },
    recordedAt: { type: Date, required: true },
    info: { type: Schema.Types.Mixed, default: null },
  },
  { versionKey: false, minimize: false, autoIndex: false, autoCreate: false, strict: true },
);

type ClaimDoc = Omit<LedgerClaimRecord, 'key' | 'generation'> & { _id: string; key: string; generation: number };

const claimSchema = new Schema<ClaimDoc>(
  {
    _id: { type: String, required: true },
    key: { type: String, required: true },
    generation: { type: Number, required: true },
    ledger: { type: String, required: true },
    holder: { type: String, required: true },
    leaseMs: { type: Number, required: true },
    renewedAt: { type: Date, required: true },
    released: { type: Boolean, required: true },
  },
  { versionKey: false, minimize: false, autoIndex: false, autoCreate: false, strict: true },
);

/** Ids per `$in` query (MongoDB). */
const IN_CHUNK = 1000;
/** Exact-`_id` delete statements per bulk command. */
const DELETE_BATCH = 500;
/** Exact `_id` reads in flight at once. */
const PARALLEL_READS = 16;
/** Above this many ids, FerretDB reads the collection once instead of one lookup per id. */
const POINT_READS_MAX = 256;

const claimId = (key: string, generation: number): string => `${key}#${generation}`;

/**
 * The {@link LedgerStore} over MongoDB (or FerretDB): collection `<prefix>_ledger`,
 * and `<prefix>_ledger_claims` for the claims of items being worked on.
 */
export class MongoLedgerStore implements LedgerStore, LedgerClaimStore {
  private constructor(
    private readonly m: Model<LedgerDoc>,
    private readonly claims: Model<ClaimDoc>,
    private readonly ops: StoreOperations,
    /** FerretDB v1: no index serves `$in`, only an exact `_id`. */
    private readonly ferret: boolean,
  ) {}

  /**
   * Binds to a connection and creates the collection if missing. Every
   * operation runs under `operationTimeoutMs` (default 10000 ms) with
   * transient errors retried for `writeRetryMs` (default 10000 ms), and then
   * throws OperationTimeoutError; writes use `writeConcern` (default majority).
   * @throws InvalidOptionError for a bad `collectionPrefix`; TaskStatusError `PTS_INVALID_OPTION` for a bad timer or `causalConsistency` option
   */
  static async create(connection: Connection, options: { collectionPrefix?: string } & OperationOptions = {}): Promise<MongoLedgerStore> {
    const prefix = options.collectionPrefix ?? 'pts';
    if (!/^[A-Za-z][A-Za-z0-9_]{0,40}$/.test(prefix)) {
      throw new InvalidOptionError('collectionPrefix', `must match /^[A-Za-z][A-Za-z0-9_]{0,40}$/, got ${JSON.stringify(prefix)}`);
    }
    const resolved = resolveStoreOptions(options);
    const name = `${prefix}:ledger`;
    const model = (connection.models[name] as Model<LedgerDoc> | undefined) ?? connection.model<LedgerDoc>(name, ledgerSchema, `${prefix}_ledger`);
    const claimsName = `${prefix}:ledger_claims`;
    const claims =
      (connection.models[claimsName] as Model<ClaimDoc> | undefined) ?? connection.model<ClaimDoc>(claimsName, claimSchema, `${prefix}_ledger_claims`);
    await connection.asPromise();
    for (const create of [() => model.createCollection(), () => claims.createCollection()]) {
      try {
        await create();
      } catch (error) {
        if ((error as { code?: number }).code !== 48) throw error; // 48: exists
      }
    }
    const ops = new StoreOperations(resolved);
    ops.causal = await CausalSession.open(connection, options.causalConsistency);
    return new MongoLedgerStore(model, claims, ops, await isFerretDb(connection));
  }

  /**
   * Inserts the entry under its id; false when the id is taken. A retry after
   * a lost reply that meets a stored entry equal to ours (same `recordedAt`
   * and `info`; the id fixes the rest) counts it as ours.
   */
  async insertEntry(entry: LedgerEntry): Promise<boolean> {
    const { id, ...rest } = entry;
    let tries = 0;
    try {
      await this.ops.write('insertEntry', (o) => {
        tries++;
        return this.m.create([{ _id: id, ...rest }], this.ops.saveOptions(o));
      });
      return true;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      if (tries === 1) return false;
      const stored = await this.ops.read('insertEntry', () => this.ops.q(this.m.findById(id)).lean<LedgerDoc>().exec());
      return (
        stored !== null &&
        stored.recordedAt.getTime() === entry.recordedAt.getTime() &&
        JSON.stringify(stored.info ?? null) === JSON.stringify(entry.info ?? null)
      );
    }
  }

  async findEntries(ids: string[]): Promise<LedgerEntry[]> {
    const docs = await this.lookUp(ids, {});
    return docs.map(toEntry);
  }

  /**
   * The ids among `ids` that exist. On MongoDB one indexed `$in` query per
   * 1,000 ids, one at a time. On FerretDB v1, which serves only an exact
   * `_id` without reading the whole collection: up to 256 ids by exact
   * `_id`, 16 in flight; more by reading the collection's ids once, in
   * batches (measured: a `$in` of 10 ids costs as much as reading all ids;
   * docs/performance.md). Memory: the ids asked and the ids found.
   * @throws OperationTimeoutError when a read got no reply in time and retries ran out
   */
  async findIds(ids: readonly string[]): Promise<Set<string>> {
    return new Set((await this.lookUp(ids, { _id: 1 })).map((d) => d._id));
  }

  private async lookUp(ids: readonly string[], projection: Record<string, 1>): Promise<LedgerDoc[]> {
    const unique = [...new Set(ids)];
    const found: LedgerDoc[] = [];
    if (this.ferret && unique.length > POINT_READS_MAX) {
      const wanted = new Set(unique);
      // One read of the whole collection, in the causal session like every other read.
      return this.ops.inSession(async (s) => {
        const options = { projection: { _id: 1, ...projection }, batchSize: 5000, maxTimeMS: this.ops.o.operationTimeoutMs * 6, ...s };
        for await (const doc of this.m.collection.find({}, options)) if (wanted.has(doc._id as unknown as string)) found.push(doc as unknown as LedgerDoc);
        return found;
      });
    }
    if (this.ferret) {
      const limit = pLimit(PARALLEL_READS);
      const docs = await Promise.all(
        unique.map((id) => limit(() => this.ops.read('findEntries', () => this.ops.q(this.m.findById(id, projection)).lean<LedgerDoc>().exec()))),
      );
      return docs.filter((d): d is LedgerDoc => d !== null);
    }
    for (let i = 0; i < unique.length; i += IN_CHUNK) {
      const chunk = unique.slice(i, i + IN_CHUNK);
      found.push(...(await this.ops.read('findEntries', () => this.ops.q(this.m.find({ _id: { $in: chunk } }, projection)).lean<LedgerDoc[]>().exec())));
    }
    return found;
  }

  async listEntries(ledger: string): Promise<LedgerEntry[]> {
    const docs = await this.ops.read('listEntries', () => this.ops.q(this.m.find({ ledger }), 6).lean<LedgerDoc[]>().exec(), 6);
    return docs.map(toEntry).sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime() || a.id.localeCompare(b.id));
  }

  async deleteEntries(ledger: string, recordedBefore?: Date): Promise<number> {
    const filter = recordedBefore ? { ledger, recordedAt: { $lt: recordedBefore } } : { ledger };
    // Idempotent: a retry after a lost reply deletes what is left.
    const result = await this.ops.write('deleteEntries', (o) => this.m.deleteMany(filter, o).exec());
    return result.deletedCount;
  }

  /**
   * Inserts one claim generation. The renewal stamp is then set by the server
   * (`$currentDate`: an insert cannot use it), so expiry is judged on one clock.
   */
  async insertClaim(claim: Omit<LedgerClaimRecord, 'renewedAt' | 'released'>): Promise<boolean> {
    const _id = claimId(claim.key, claim.generation);
    let tries = 0;
    try {
      await this.ops.write('insertClaim', (o) => {
        tries++;
        return this.claims.create([{ _id, ...claim, renewedAt: new Date(), released: false }], this.ops.saveOptions(o));
      });
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      if (tries === 1) return false;
      const stored = await this.getClaim(claim.key, claim.generation);
      if (stored?.holder !== claim.holder) return false; // a lost reply: ours only if the holder matches
    }
    await this.renewClaim(claim.key, claim.generation, claim.holder);
    return true;
  }

  async getClaim(key: string, generation: number): Promise<LedgerClaimRecord | null> {
    const doc = await this.ops.read('getClaim', () => this.ops.q(this.claims.findById(claimId(key, generation))).lean<ClaimDoc>().exec());
    if (!doc) return null;
    const { _id, ...rest } = doc;
    return rest;
  }

  async renewClaim(key: string, generation: number, holder: string): Promise<boolean> {
    const r = await this.ops.write('renewClaim', (o) =>
      this.claims.updateOne({ _id: claimId(key, generation), holder, released: false }, { $currentDate: { renewedAt: true } }, o).exec(),
    );
    return r.matchedCount > 0;
  }

  async releaseClaim(key: string, generation: number, holder: string): Promise<void> {
    await this.ops.write('releaseClaim', (o) =>
      this.claims.updateOne({ _id: claimId(key, generation), holder }, { $set: { released: true } }, o).exec(),
    );
  }

  serverTime(): Promise<Date | null> {
    return serverTime(this.claims.db.db);
  }

  async releaseClaimsOf(ledger: string, holder: string): Promise<number> {
    // One scan of this ledger's claims (small), then one fenced write per claim by exact `_id`.
    const docs = await this.ops.read('releaseClaimsOf', () =>
      this.ops.q(this.claims.find({ ledger, holder, released: false }, { _id: 0, key: 1, generation: 1 })).lean<Array<Pick<ClaimDoc, 'key' | 'generation'>>>().exec(),
    );
    for (const d of docs) await this.releaseClaim(d.key, d.generation, holder);
    return docs.length;
  }

  async deleteClaimsOfRecorded(ledger: string): Promise<number> {
    // Maintenance: one scan of the claims of this ledger (small: one document per claimed item and takeover).
    const docs = await this.ops.read('deleteClaimsOfRecorded', () =>
      this.ops.q(this.claims.find({ ledger }, { _id: 1, key: 1 })).lean<Array<Pick<ClaimDoc, '_id' | 'key'>>>().exec(),
    );
    if (docs.length === 0) return 0;
    const recorded = new Set((await this.findEntries([...new Set(docs.map((d) => d.key))])).map((e) => e.id));
    const ids = docs.filter((d) => recorded.has(d.key)).map((d) => d._id);
    let deleted = 0;
    for (let at = 0; at < ids.length; at += DELETE_BATCH) {
      // One delete statement per exact `_id`: FerretDB v1 serves only an exact `_id` by index, and scans for a `$in`.
      const ops = ids.slice(at, at + DELETE_BATCH).map((_id) => ({ deleteOne: { filter: { _id } } }));
      // Idempotent: a retry after a lost reply deletes what is left.
      const r = await this.ops.write('deleteClaimsOfRecorded', (o) => this.claims.bulkWrite(ops, { ordered: false, ...o }));
      deleted += r.deletedCount;
    }
    return deleted;
  }
}

function toEntry(doc: LedgerDoc): LedgerEntry {
  const { _id, ...rest } = doc;
  return { id: _id, ...rest, info: rest.info ?? null };
}
