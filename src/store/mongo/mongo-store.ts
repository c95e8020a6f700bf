import { randomBytes } from 'node:crypto';
import mongoose, { type Connection } from 'mongoose';
import type { ResolvedTaskOptions } from '../../definition/options.js';
import { LeaseLostError, TaskStatusError, UnstorableValueError, type ServerUnreachableError } from '../../errors.js';
import { deriveContainerState } from '../container-state.js';
import { foldTransitions } from '../fold.js';
import type { Transition } from '../transition.js';
import type {
  AttemptOutcome,
  AttemptPatch,
  Claim,
  ContainerRecord,
  ContainerSnapshot,
  NewClaim,
  NewContainer,
  NewTask,
  SettleOutcome,
  TaskRecord,
  TaskStore,
} from '../types.js';
import { DEFAULT_SERVER_SELECTION_TIMEOUT_MS, waitForServer } from './connect.js';
import { connectionDatabase, type ConnectionDatabase } from './database-name.js';
import { isDuplicateKeyError, taskKey, transitionKey } from './keys.js';
import { bindModels, LEGACY_INDEXES, type ContainerDoc, type StoreModels, type TaskDoc, type TransitionDoc } from './models.js';
import { retryTransient } from '../retry.js';
import { resolveStoreOptions, type MongoStoreOptions, type ResolvedStoreOptions, type StoreWriteConcern } from './store-options.js';

export type { MongoStoreOptions, StoreWriteConcern } from './store-options.js';

const newNonce = (): string => randomBytes(8).toString('hex');

/** The {@link TaskStore} over MongoDB (or FerretDB) through mongoose. */
export class MongoStore implements TaskStore {
  /**
   * The incarnation of each container as this store last read or created it.
   * Writes go to it: a runner whose container was deleted and created again
   * elsewhere keeps writing to the old keys (invisible) until it reads again.
   */
  private readonly pins = new Map<string, string>();

  private constructor(
    private readonly m: StoreModels,
    private readonly o: ResolvedStoreOptions,
  ) {}

  /** The database this store reads and writes (`defaulted`: the URI named none, so it is `test`). */
  get database(): ConnectionDatabase {
    return connectionDatabase(this.m.containers.db);
  }

  /** Binds the store to a connection and makes sure its indexes exist. */
  static async create(connection: Connection, options: MongoStoreOptions = {}): Promise<MongoStore> {
    const prefix = options.collectionPrefix ?? 'pts';
    if (!/^[A-Za-z][A-Za-z0-9_]{0,40}$/.test(prefix)) {
      throw new TaskStatusError('PTS_INVALID_OPTION', `Invalid option "collectionPrefix": ${JSON.stringify(prefix)}`);
    }
    const resolved = resolveStoreOptions(options);
    const models = bindModels(connection, prefix);
    await waitForServer(connection, options.serverSelectionTimeoutMs ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS);
    if (options.ensureIndexes ?? true) {
      await Promise.all([models.containers, models.tasks, models.transitions].map((m) => ensureIndexes(m)));
      await Promise.all([dropIndex(models.tasks, LEGACY_INDEXES.tasks), dropIndex(models.transitions, LEGACY_INDEXES.transitions)]);
    }
    return new MongoStore(models, resolved);
  }

  /** Now on the store's wall clock. */
  private now(): Date {
    return new Date(this.o.clock.now());
  }

  /** Runs an idempotent write under the operation deadline, retrying transient errors. */
  private write<T>(operation: string, fn: (o: { writeConcern: StoreWriteConcern }) => Promise<T>): Promise<T> {
    const options = { writeConcern: this.o.writeConcern };
    return retryTransient(() => fn(options), { operation, timeoutMs: this.o.operationTimeoutMs, budgetMs: this.o.writeRetryMs });
  }

  /** Runs a read under the operation deadline (`scale` times it), retrying transient errors. */
  private read<T>(operation: string, fn: () => Promise<T>, scale = 1): Promise<T> {
    const timeoutMs = this.o.operationTimeoutMs * scale;
    return retryTransient(fn, { operation, timeoutMs, budgetMs: Math.max(timeoutMs, this.o.writeRetryMs) });
  }

  /** Read concern, preference and server-side time limit of a query. */
  private q<Q extends { read(p: string): Q; readConcern(l: string): Q; maxTimeMS(ms: number): Q }>(query: Q, scale = 1): Q {
    return query.read(this.o.readPreference).readConcern(this.o.readConcern).maxTimeMS(this.o.operationTimeoutMs * scale);
  }

  async createContainer(input: NewContainer): Promise<{ record: ContainerRecord; created: boolean }> {
    for (let round = 1; ; round++) {
      const now = new Date();
      const doc: ContainerDoc = {
        _id: input.name,
        status: 'running',
        failFast: input.failFast,
        definition: input.definition,
        createdAt: now,
        updatedAt: now,
        finishedAt: null,
        cancelRequestedAt: null,
        incarnation: randomBytes(8).toString('hex'),
        deletedAt: null,
      };
      try {
        await this.m.containers.create(doc);
        this.pins.set(input.name, doc.incarnation!);
        return { record: toContainerRecord(doc), created: true };
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        const raw = await this.m.containers.findById(input.name).lean<ContainerDoc>();
        // A delete that died half-way left a tombstone: finish its purge, then create.
        if (raw?.deletedAt && round < 3) {
          await this.purge(input.name);
          continue;
        }
        const existing = await this.getContainer(input.name);
        if (!existing) throw error;
        return { record: existing, created: false };
      }
    }
  }

  /** The container with its status derived from its tasks (see {@link deriveContainerState}), or null. */
  async getContainer(name: string): Promise<ContainerRecord | null> {
    return (await this.loadSnapshot(name))?.container ?? null;
  }

  /** Every container, oldest first, each with its status derived from its tasks. */
  async listContainers(): Promise<ContainerRecord[]> {
    const docs = await this.m.containers.find({}).lean<ContainerDoc[]>();
    const records: ContainerRecord[] = [];
    for (const doc of docs) {
      const snapshot = await this.loadSnapshot(doc._id);
      if (snapshot) records.push(snapshot.container);
    }
    return records.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  async deleteContainer(name: string): Promise<boolean> {
    // The tombstone first: from here on the container reads as gone, and a
    // create under the same name makes a new incarnation.
    const res = await this.m.containers.updateOne({ _id: name, deletedAt: null }, { $set: { deletedAt: new Date() } });
    this.pins.delete(name);
    if (res.matchedCount === 0) return false;
    await this.purge(name);
    return true;
  }

  /** Removes a tombstoned container with everything stored under its name (every incarnation). */
  private async purge(name: string): Promise<void> {
    // Children first: a crash half-way leaves a tombstone that a delete or create finishes.
    await this.m.transitions.deleteMany({ container: name });
    await this.m.tasks.deleteMany({ container: name });
    await this.m.containers.deleteOne({ _id: name, deletedAt: { $ne: null } });
  }

  /** The incarnation writes to this container go to; null when it does not exist. */
  private async incarnation(container: string): Promise<string | null> {
    const pinned = this.pins.get(container);
    if (pinned !== undefined) return pinned;
    const doc = await this.readContainerDoc('incarnation', container);
    if (!doc || doc.deletedAt) return null;
    this.pins.set(container, doc.incarnation ?? '');
    return doc.incarnation ?? '';
  }

  /** The raw container document (tombstoned or not), under the read deadline. */
  private readContainerDoc(operation: string, name: string): Promise<ContainerDoc | null> {
    return this.read(operation, () => this.q(this.m.containers.findById(name).lean<ContainerDoc>()).exec());
  }

  async finishContainer(name: string, status: 'succeeded' | 'failed' | 'cancelled'): Promise<void> {
    const now = new Date();
    await this.write('finishContainer', (o) =>
      this.m.containers.updateOne({ _id: name }, { $set: { status, finishedAt: now, updatedAt: now } }, o).exec(),
    );
  }

  async reopenContainer(name: string): Promise<void> {
    const set = { status: 'running', finishedAt: null, cancelRequestedAt: null, updatedAt: this.now() };
    await this.write('reopenContainer', (o) => this.m.containers.updateOne({ _id: name }, { $set: set }, o).exec());
  }

  async updateContainer(name: string, patch: { failFast?: boolean }): Promise<void> {
    const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    if (Object.keys(set).length === 0) return;
    await this.write('updateContainer', (o) => this.m.containers.updateOne({ _id: name }, { $set: { ...set, updatedAt: this.now() } }, o).exec());
  }

  async requestCancel(name: string): Promise<boolean> {
    const now = new Date();
    const res = await this.write('requestCancel', (o) =>
      this.m.containers.updateOne({ _id: name }, { $set: { cancelRequestedAt: now, updatedAt: now } }, o).exec(),
    );
    return res.matchedCount > 0;
  }

  async addTasks(container: string, tasks: NewTask[]): Promise<string[]> {
    const inc = await this.incarnation(container);
    if (inc === null) return [];
    const now = new Date();
    const base = now.getTime() * 1000;
    const added: string[] = [];
    // One insert per task: a duplicate name must not stop the others, and
    // FerretDB reports unordered bulk errors less precisely than MongoDB.
    for (const [i, t] of tasks.entries()) {
      const doc: TaskDoc = {
        _id: taskKey(container, t.name, inc),
        container,
        ...(inc ? { incarnation: inc } : {}),
        name: t.name,
        dependsOn: [...t.dependsOn],
        handler: t.handler,
        input: t.input ?? null,
        options: t.options,
        dynamic: t.dynamic,
        addedBy: t.addedBy,
        stagedBy: t.stagedBy ?? null,
        order: base + i,
        createdAt: now,
      };
      try {
        await this.m.tasks.create(doc);
        added.push(t.name);
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        if (await this.restage(container, inc, doc)) added.push(t.name);
      }
    }
    return added;
  }

  /**
   * A staged task whose name is taken by a task staged earlier by an attempt
   * of the same adder that never succeeded (it died or was fenced off) takes
   * its place; true when it did.
   */
  private async restage(container: string, inc: string, doc: TaskDoc): Promise<boolean> {
    if (doc.stagedBy === null || doc.stagedBy === undefined || doc.addedBy === null) return false;
    const existing = await this.m.tasks.findById(doc._id).lean<TaskDoc>();
    const old = existing?.stagedBy;
    if (!existing || old === null || old === undefined || existing.addedBy !== doc.addedBy || old >= doc.stagedBy) return false;
    const outcome = await this.m.transitions.findById(transitionKey(container, doc.addedBy, old + 1, inc)).lean<TransitionDoc>();
    if (outcome?.kind === 'succeeded') return false; // it is part of the container
    const res = await this.m.tasks.replaceOne({ _id: doc._id, stagedBy: old }, { ...doc, order: existing.order });
    return res.modifiedCount > 0;
  }

  async updateTaskRecord(container: string, name: string, patch: Partial<NewTask>): Promise<boolean> {
    const { name: newName, ...rest } = patch;
    const inc = await this.incarnation(container);
    if (inc === null) return false;
    if (newName !== undefined && newName !== name) return this.renameTask(container, inc, name, newName, rest);
    const res = await this.m.tasks.updateOne({ _id: taskKey(container, name, inc) }, { $set: rest });
    return res.matchedCount > 0;
  }

  /** Re-keys a task and its log under a new name; the new name must be free. */
  private async renameTask(container: string, inc: string, from: string, to: string, rest: Partial<NewTask>): Promise<boolean> {
    const doc = await this.m.tasks.findById(taskKey(container, from, inc)).lean<TaskDoc>();
    if (!doc) return false;
    await this.m.tasks.create({ ...doc, ...rest, _id: taskKey(container, to, inc), name: to });
    const log = (await this.m.transitions.find({ container, task: from }).lean<TransitionDoc[]>()).filter(
      (t) => (t.incarnation ?? '') === inc,
    );
    if (log.length > 0) {
      await this.m.transitions.insertMany(
        log.map((t) => ({ ...t, _id: transitionKey(container, to, t.token, inc), task: to })),
      );
    }
    await this.deleteTask(container, from);
    return true;
  }

  async deleteTask(container: string, name: string): Promise<boolean> {
    const inc = await this.incarnation(container);
    if (inc === null) return false;
    await this.m.transitions.deleteMany({ container, task: name });
    const res = await this.m.tasks.deleteOne({ _id: taskKey(container, name, inc) });
    return res.deletedCount > 0;
  }

  async loadSnapshot(container: string): Promise<ContainerSnapshot | null> {
    const readAt = this.now();
    // In this order, so the reads form a consistent view for the decisions
    // made from them: a task is inserted before any transition of its own or
    // of the attempt that added it, so every task a transition read refers
    // to is seen by the task read that follows it.
    const doc = await this.readContainerDoc('loadSnapshot', container);
    if (!doc || doc.deletedAt) return null;
    const record = toContainerRecord(doc);
    const inc = doc.incarnation ?? '';
    this.pins.set(container, inc);
    // Documents of other incarnations (late writes of a deleted run) are not this container's.
    const mine = (d: { incarnation?: string }) => (d.incarnation ?? '') === inc;
    const log = (
      await this.read('loadSnapshot', () => this.q(this.m.transitions.find({ container }).lean<TransitionDoc[]>(), 6).exec(), 6)
    ).filter(mine);
    const tasks = (await this.read('loadSnapshot', () => this.q(this.m.tasks.find({ container }).lean<TaskDoc[]>(), 6).exec(), 6)).filter(mine);
    const byTask = new Map<string, Transition[]>();
    for (const t of log) {
      const list = byTask.get(t.task);
      if (list) list.push(t);
      else byTask.set(t.task, [t]);
    }
    // A task staged by an attempt is part of the container once that attempt succeeded.
    const visible = (doc: TaskDoc) => {
      if (doc.stagedBy === null || doc.stagedBy === undefined || doc.addedBy === null) return true;
      const outcome = byTask.get(doc.addedBy)?.find((t) => t.token === doc.stagedBy! + 1);
      return outcome?.kind === 'succeeded';
    };
    const snapshots = tasks
      .filter(visible)
      .sort((a, b) => a.order - b.order || a.name.localeCompare(b.name))
      .map((doc) => ({
        record: toTaskRecord(doc),
        state: foldTransitions((byTask.get(doc.name) ?? []).sort((a, b) => a.token - b.token)),
      }));
    const derived = deriveContainerState(record, snapshots);
    return { container: { ...record, status: derived.status, finishedAt: derived.finishedAt }, tasks: snapshots, readAt };
  }

  async claimTask(
    container: string,
    task: string,
    expectedToken: number,
    claim: NewClaim,
  ): Promise<Claim | null> {
    const inc = await this.incarnation(container);
    if (inc === null) return null;
    const at = this.now();
    const token = expectedToken + 1;
    const leaseUntil = new Date(at.getTime() + claim.leaseMs);
    const progress = claim.progress ?? 0;
    const nonce = newNonce();
    // A claim whose reply was lost is recognised by its nonce on the retry
    // (see append) and kept: it is ours, not a position someone else took.
    const inserted = await this.append({
      nonce,
      container,
      ...(inc ? { incarnation: inc } : {}),
      task,
      token,
      kind: 'claimed',
      at,
      runnerId: claim.runnerId,
      attempt: claim.attempt,
      leaseUntil,
      progress,
      startProgress: progress,
      checkpointProgress: progress,
      statusText: '',
      checkpoint: claim.checkpoint ?? null,
      leaseMs: claim.leaseMs,
      heartbeatMs: claim.heartbeatMs ?? null,
    });
    if (!inserted) return null;
    return { container, incarnation: inc, task, token, attempt: claim.attempt, runnerId: claim.runnerId, claimedAt: at, leaseUntil, progress, nonce };
  }

  async updateAttempt(claim: Claim, patch: AttemptPatch): Promise<void> {
    const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    if (set.checkpoint !== undefined) {
      // The claim entry as it will be once patched (its other fields are small).
      assertFits('checkpoint', claim.task, { ...claim, kind: 'claimed', at: claim.claimedAt, progress: 0, statusText: '', ...set });
    }
    // Writing to our own claim entry is harmless even when fenced out: state is
    // read from the newest claim only. The probe below tells us if we lost it.
    // Both are idempotent, so a transient error repeats them. The keys carry
    // the claim's incarnation: a re-created container never sees these writes.
    const inc = claim.incarnation ?? (await this.incarnation(claim.container)) ?? '';
    const id = transitionKey(claim.container, claim.task, claim.token, inc);
    await this.write('updateAttempt', (o) => this.m.transitions.updateOne({ _id: id }, { $set: set }, o).exec());
    const nextId = transitionKey(claim.container, claim.task, claim.token + 1, inc);
    const next = await this.read('updateAttempt', () =>
      this.q(this.m.transitions.findById(nextId, { nonce: 1 }).lean<{ nonce?: string }>()).exec(),
    );
    // Our own outcome (written, then a heartbeat still in flight) is not a takeover.
    if (next && (claim.nonce === undefined || next.nonce !== outcomeNonce(claim))) {
      throw new LeaseLostError(claim.container, claim.task, claim.token);
    }
  }

  async finishAttempt(claim: Claim, outcome: AttemptOutcome, endedAt = this.now()): Promise<void> {
    const inc = claim.incarnation ?? (await this.incarnation(claim.container)) ?? '';
    // The same nonce on every call for this claim: repeating the outcome after
    // a lost reply finds its own entry instead of reporting a lost lease.
    const base = {
      container: claim.container,
      ...(inc ? { incarnation: inc } : {}),
      task: claim.task,
      token: claim.token + 1,
      at: endedAt,
      nonce: outcomeNonce(claim),
    };
    const entry: Transition =
      outcome.kind === 'succeeded'
        ? { ...base, kind: 'succeeded', output: outcome.output ?? null }
        : outcome.kind === 'failed'
          ? { ...base, kind: 'failed', error: outcome.error, retryAt: outcome.retryAt }
          : outcome.kind === 'cancelled'
            ? { ...base, kind: 'cancelled', reason: outcome.reason }
            : { ...base, kind: 'released' };
    if (outcome.kind === 'succeeded') assertFits('output', claim.task, { ...entry, _id: transitionKey(claim.container, claim.task, base.token, inc) });
    if (!(await this.append(entry))) throw new LeaseLostError(claim.container, claim.task, claim.token);
  }

  async settleTask(container: string, task: string, expectedToken: number, outcome: SettleOutcome): Promise<boolean> {
    const inc = await this.incarnation(container);
    if (inc === null) return false;
    const base = { container, ...(inc ? { incarnation: inc } : {}), task, token: expectedToken + 1, at: this.now(), nonce: newNonce() };
    if (outcome.kind === 'edited') return this.append({ ...base, kind: 'edited', set: outcome.set });
    if (outcome.kind === 'reset') return this.append({ ...base, kind: 'reset', reason: null });
    return this.append({ ...base, kind: outcome.kind, reason: outcome.reason, cause: outcome.cause ?? null });
  }

  /**
   * Appends to a task's log at `entry.token`; false when another writer holds
   * that position. Transient errors (network, timeout, not primary) are
   * retried with the same `_id` and nonce; a duplicate key is then read back:
   * our own nonce means an earlier try landed and its reply was lost.
   */
  private async append(entry: Transition): Promise<boolean> {
    const _id = transitionKey(entry.container, entry.task, entry.token, entry.incarnation);
    return this.write('append', async (o) => {
      try {
        const { w, wtimeoutMS, j } = o.writeConcern;
        const saveOptions = Object.fromEntries(Object.entries({ w, wtimeout: wtimeoutMS, j }).filter(([, v]) => v !== undefined));
        await this.m.transitions.create([{ ...entry, _id } as TransitionDoc], saveOptions);
        return true;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        if (entry.nonce === undefined) return false;
        const there = await this.q(this.m.transitions.findById(_id, { nonce: 1 }).lean<{ nonce?: string }>()).exec();
        return there?.nonce === entry.nonce;
      }
    });
  }
}

/** Nonce of a claim's outcome entry: the same for every try of that claim's outcome. */
function outcomeNonce(claim: Claim): string | undefined {
  return claim.nonce === undefined ? undefined : `${claim.nonce}:end`;
}

/** Largest document MongoDB (and FerretDB) stores: 16 MiB. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** Refuses a document over the BSON limit before the driver fails on it with an unhelpful message. */
function assertFits(value: 'output' | 'checkpoint', task: string, doc: Record<string, unknown>): void {
  const size = mongoose.mongo.BSON.calculateObjectSize(doc);
  if (size > MAX_DOCUMENT_BYTES) {
    throw new UnstorableValueError(
      value,
      task,
      `it makes a ${size}-byte BSON document, over the limit of ${MAX_DOCUMENT_BYTES} bytes (16 MiB) per MongoDB document; ` +
        'store large data elsewhere (a file, GridFS, another collection) and return a reference',
      size,
      MAX_DOCUMENT_BYTES,
    );
  }
}

/** Drops an index if it exists (an index of an earlier version whose keys changed). */
async function dropIndex(model: StoreModels[keyof StoreModels], name: string): Promise<void> {
  try {
    await model.collection.dropIndex(name);
  } catch {
    // Not there (or the server cannot drop it): nothing to do.
  }
}

async function ensureIndexes(model: StoreModels[keyof StoreModels]): Promise<void> {
  try {
    await model.createCollection();
  } catch (error) {
    // Already exists (code 48), possibly created by a concurrent runner.
    if ((error as { code?: number }).code !== 48) throw error;
  }
  await model.createIndexes();
}

function toContainerRecord(doc: ContainerDoc): ContainerRecord {
  return {
    name: doc._id,
    status: doc.status,
    failFast: doc.failFast,
    definition: doc.definition ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    finishedAt: doc.finishedAt ?? null,
    cancelRequestedAt: doc.cancelRequestedAt ?? null,
    incarnation: doc.incarnation ?? '',
  };
}

function toTaskRecord(doc: TaskDoc): TaskRecord {
  return {
    container: doc.container,
    name: doc.name,
    dependsOn: doc.dependsOn ?? [],
    handler: doc.handler,
    input: doc.input ?? null,
    options: doc.options as ResolvedTaskOptions,
    dynamic: doc.dynamic ?? false,
    addedBy: doc.addedBy ?? null,
    stagedBy: doc.stagedBy ?? null,
    order: doc.order,
    createdAt: doc.createdAt,
  };
}
