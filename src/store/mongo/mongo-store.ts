import type { Connection } from 'mongoose';
import { TaskStatusError } from '../../errors.js';
import type {
  AppliedDefinition,
  AttemptOutcome,
  AttemptPatch,
  AttemptTraceKey,
  Claim,
  ClaimRequest,
  ContainerRecord,
  ContainerHead,
  ContainerPage,
  ContainerPageQuery,
  ContainerSnapshot,
  NewContainer,
  NewTask,
  NewTasks,
  RetryIntent,
  SettleOutcome,
  SnapshotOptions,
  TaskRead,
  TaskRecord,
  TaskRecordsRead,
  TaskStore,
  HeldSlots,
  SlotAcquisition,
  SlotHolder,
  SlotHolding,
  SlotId,
} from '../types.js';
import type { Transition } from '../transition.js';
import { DEFAULT_SERVER_SELECTION_TIMEOUT_MS, waitForServer } from './connect.js';
import { withDeadline } from '../retry.js';
import { listContainerPage } from './container-list.js';
import { appendToListing } from './listing.js';
import { CausalSession } from './causal-session.js';
import { StoreContext } from './context.js';
import { connectionDatabase, type ConnectionDatabase } from './database-name.js';
import { bindModels, LEGACY_INDEXES, type ContainerDoc, type StoreModels } from './models.js';
import { measureServerOffset, serverTime } from './server-clock.js';
import { isFerretDb, updatesAreAtomic } from './server-kind.js';
import { UpdateGate } from './update-gate.js';
import { loadSnapshot } from './snapshot-read.js';
import * as reads from './log-read.js';
import * as single from './task-read.js';
import * as records from './task-records.js';
import * as log from './task-log.js';
import * as lifecycle from './container-lifecycle.js';
import * as traces from './trace-store.js';
import * as slots from './slots.js';
import { resolveStoreOptions, type MongoStoreOptions } from './store-options.js';

export type { MongoStoreOptions, StoreWriteConcern } from './store-options.js';

/** The {@link TaskStore} over MongoDB (or FerretDB) through mongoose. */
export class MongoStore implements TaskStore {
  private readonly ctx: StoreContext;
  private readonly m: StoreModels;

  private constructor(ctx: StoreContext) {
    this.ctx = ctx;
    this.m = ctx.m;
  }

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
      await Promise.all([models.containers, models.tasks, models.transitions, models.directory, models.graph, models.slots, models.listing].map((m) => ensureIndexes(m)));
      await Promise.all([dropIndex(models.tasks, LEGACY_INDEXES.tasks), dropIndex(models.transitions, LEGACY_INDEXES.transitions)]);
    }
    const ctx = new StoreContext(models, resolved);
    if (!(await updatesAreAtomic(connection))) {
      if (options.ensureIndexes ?? true) await ensureIndexes(models.gates);
      ctx.gate = new UpdateGate(models.gates, resolved);
    }
    const reads = options.containerReads ?? 'auto';
    ctx.keyedReads = reads === 'by-key' || (reads === 'auto' && (await isFerretDb(connection)));
    ctx.causal = await CausalSession.open(connection, options.causalConsistency);
    ctx.serverOffsetMs = await measureServerOffset(models.containers.db.db, resolved.clock).catch(() => null);
    return new MongoStore(ctx);
  }

  /** Creates the container, or returns the one that exists (see {@link createContainer} in container-lifecycle.ts). */
  createContainer(input: NewContainer): Promise<{ record: ContainerRecord; created: boolean }> {
    return lifecycle.createContainer(this.ctx, input);
  }

  /** The container with its status derived from its tasks (see {@link deriveContainerState}), or null. */
  async getContainer(name: string): Promise<ContainerRecord | null> {
    return (await this.loadSnapshot(name))?.container ?? null;
  }

  /** Every container, oldest first, each with its status derived from its tasks. */
  async listContainers(): Promise<ContainerRecord[]> {
    const docs = await this.ctx.read('listContainers', () => this.ctx.q(this.m.containers.find({}).lean<ContainerDoc[]>(), 6).exec(), 6);
    const records: ContainerRecord[] = [];
    for (const doc of docs) {
      const snapshot = await this.loadSnapshot(doc._id);
      if (snapshot) records.push(snapshot.container);
    }
    return records.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** One page of containers, newest first (see {@link listContainerPage}). */
  listContainerPage(query: ContainerPageQuery): Promise<ContainerPage> {
    return listContainerPage(this.ctx, query);
  }

  /** Tombstones the container, then purges its incarnation; false when it did not exist (see container-lifecycle.ts). */
  deleteContainer(name: string): Promise<boolean> {
    return lifecycle.deleteContainer(this.ctx, name);
  }

  /**
   * Records the final status hint. A container reaching it appends an entry
   * to that status's list (see listing.ts) before the status is set with the
   * entry's number, so the dashboard's status filter reads matches by `_id`;
   * a cut in between leaves a dead entry and the container as it was.
   * @throws OperationTimeoutError when the server gave no reply in time and retries ran out
   */
  async finishContainer(name: string, status: 'succeeded' | 'failed' | 'cancelled'): Promise<void> {
    const now = new Date();
    const doc = await this.ctx.readContainerDoc('finishContainer', name, false);
    const set: Partial<ContainerDoc> = { status, finishedAt: now, updatedAt: now };
    const recorded = doc?.status === status && typeof doc.statusEntry === 'number';
    if (doc && !doc.deletedAt && !recorded) set.statusEntry = await appendToListing(this.ctx, name, doc.incarnation ?? '', now, status);
    await this.ctx.writeContainer('finishContainer', name, (o) => this.m.containers.updateOne({ _id: name }, { $set: set }, o).exec());
  }

  async reopenContainer(name: string): Promise<void> {
    const set = { status: 'running', finishedAt: null, cancelRequestedAt: null, updatedAt: this.ctx.now() };
    await this.ctx.writeContainer('reopenContainer', name, (o) => this.m.containers.updateOne({ _id: name }, { $set: set, $inc: { revision: 1 } }, o).exec());
  }

  async beginRetry(name: string, intent: RetryIntent): Promise<boolean> {
    const res = await this.ctx.writeContainer('beginRetry', name, (o) =>
      this.m.containers.updateOne({ _id: name, deletedAt: null }, { $set: { retry: intent, updatedAt: this.ctx.now() }, $inc: { revision: 1 } }, o).exec(),
    );
    return res.matchedCount > 0;
  }

  async endRetry(name: string, id: string): Promise<void> {
    const set = { status: 'running', finishedAt: null, cancelRequestedAt: null, retry: null, updatedAt: this.ctx.now() };
    await this.ctx.writeContainer('endRetry', name, (o) => this.m.containers.updateOne({ _id: name, 'retry.id': id }, { $set: set, $inc: { revision: 1 } }, o).exec());
  }

  async recordApplied(name: string, applied: AppliedDefinition): Promise<void> {
    // Idempotent, and no revision move: it says what the tasks were at `applied.revision`.
    await this.ctx.writeContainer('recordApplied', name, (o) =>
      this.m.containers.updateOne({ _id: name }, { $set: { applied: { fingerprint: applied.fingerprint, revision: applied.revision, quiet: applied.quiet } } }, o).exec(),
    );
  }

  async updateContainer(name: string, patch: { failFast?: boolean }): Promise<void> {
    const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    if (Object.keys(set).length === 0) return;
    await this.ctx.writeContainer('updateContainer', name, (o) => this.m.containers.updateOne({ _id: name }, { $set: { ...set, updatedAt: this.ctx.now() }, $inc: { revision: 1 } }, o).exec());
  }

  async requestCancel(name: string): Promise<boolean> {
    const now = new Date();
    const res = await this.ctx.writeContainer('requestCancel', name, (o) =>
      this.m.containers.updateOne({ _id: name }, { $set: { cancelRequestedAt: now, updatedAt: now }, $inc: { revision: 1 } }, o).exec(),
    );
    return res.matchedCount > 0;
  }

  // Changes runners cannot see through their own writes move the container's
  // revision on, after they are written (see ContainerHead.revision).

  async addTasks(container: string, tasks: NewTasks): Promise<string[]> {
    const added = await records.addTasks(this.ctx, container, tasks);
    if (added.length > 0) await this.ctx.bump(container);
    return added;
  }

  async updateTaskRecord(container: string, name: string, patch: Partial<NewTask>): Promise<boolean> {
    const updated = await records.updateTaskRecord(this.ctx, container, name, patch);
    if (updated) await this.ctx.bump(container);
    return updated;
  }

  async deleteTask(container: string, name: string): Promise<boolean> {
    const deleted = await records.deleteTask(this.ctx, container, name);
    await this.ctx.bump(container);
    return deleted;
  }

  loadSnapshot(container: string, options?: SnapshotOptions): Promise<ContainerSnapshot | null> {
    return loadSnapshot(this.ctx, container, options);
  }

  loadTask(container: string, task: string): Promise<TaskRead | null> {
    return single.loadTask(this.ctx, container, task);
  }

  loadTaskRecords(container: string, tasks: readonly string[]): Promise<TaskRecordsRead | null> {
    return single.loadTaskRecords(this.ctx, container, tasks);
  }

  loadDependents(container: string, task: string): Promise<TaskRecord[]> {
    return single.loadDependents(this.ctx, container, task);
  }

  /**
   * The server's current time (`hello`'s `localTime`): the clock lease renewals are stamped with.
   * @throws OperationTimeoutError when the server does not answer within the operation deadline (a partition)
   */
  serverTime(): Promise<Date | null> {
    return withDeadline('serverTime', this.ctx.o.operationTimeoutMs, serverTime(this.m.containers.db.db));
  }

  readSlots(container: string, ids: readonly SlotId[]): Promise<SlotHolding[]> {
    return slots.readSlots(this.ctx, container, ids);
  }

  acquireSlots(container: string, ids: readonly SlotId[], holder: SlotHolder): Promise<SlotAcquisition> {
    return slots.acquireSlots(this.ctx, container, ids, holder);
  }

  releaseSlots(held: HeldSlots): Promise<void> {
    return slots.releaseSlots(this.ctx, held);
  }

  evictSlot(container: string, holding: SlotHolding): Promise<boolean> {
    return slots.evictSlot(this.ctx, container, holding);
  }

  renewSlots(held: HeldSlots, expiresAt: Date): Promise<boolean> {
    return slots.renewSlots(this.ctx, held, expiresAt);
  }

  sweepSlots(container: string, before: Date): Promise<number> {
    return slots.sweepSlots(this.ctx, container, before);
  }

  /** Stores an attempt's span context (`<prefix>_traces`, by exact `_id`; see `RunnerTracing`). */
  saveTrace(key: AttemptTraceKey, traceparent: string): Promise<void> {
    return traces.saveTrace(this.ctx, this.traceModel(), key, traceparent);
  }

  /** An attempt's stored span context, or null. */
  readTrace(key: AttemptTraceKey): Promise<string | null> {
    return traces.readTrace(this.ctx, this.traceModel(), key);
  }

  private traceModel() {
    return traces.traceModel(this.m.containers.db, this.m.containers.collection.collectionName.replace(/_containers$/, ''));
  }

  claimTask(request: ClaimRequest): Promise<Claim | null> {
    return log.claimTask(this.ctx, request);
  }

  updateAttempt(claim: Claim, patch: AttemptPatch): Promise<void> {
    return log.updateAttempt(this.ctx, claim, patch);
  }

  /** See {@link TaskStore.assertStorableInputs}: server rules, nesting depth and the 16 MiB limit. */
  assertStorableInputs(tasks: ReadonlyArray<{ name: string; input?: unknown }>): Promise<void> {
    return records.assertStorableTasks(this.ctx, tasks);
  }

  async finishAttempt(claim: Claim, outcome: AttemptOutcome, endedAt?: Date): Promise<AttemptOutcome['kind']> {
    // A failure for good is announced before it is written: every runner of
    // the container reads it again at its next poll and from then on watches
    // the task, so a fail-fast stop (or the skip of its dependents) reaches
    // runners that held the task as pending. A cut in between leaves the
    // task running under a lease, recovered as after any crash.
    if (outcome.kind === 'failed' && outcome.retryAt === null) await this.ctx.bump(claim.container);
    return log.finishAttempt(this.ctx, claim, outcome, endedAt);
  }

  readContainerHead(container: string): Promise<ContainerHead | null> {
    return reads.readContainerHead(this.ctx, container);
  }

  readLog(container: string, task: string, fromToken: number, limit?: number): Promise<Transition[]> {
    return reads.readLog(this.ctx, container, task, fromToken, limit);
  }

  readOutputs(container: string, refs: ReadonlyArray<{ task: string; token: number }>): Promise<Map<string, unknown>> {
    return reads.readOutputs(this.ctx, container, refs);
  }

  readInputs(container: string, tasks: readonly string[]): Promise<Map<string, unknown>> {
    return reads.readInputs(this.ctx, container, tasks);
  }

  async settleTask(container: string, task: string, expectedToken: number, outcome: SettleOutcome): Promise<boolean> {
    const settled = await log.settleTask(this.ctx, container, task, expectedToken, outcome);
    // A skip or cancel is what every runner derives from what it sees; a
    // reset or a hand edit is not, so it moves the revision on.
    if (settled && (outcome.kind === 'reset' || outcome.kind === 'edited')) await this.ctx.bump(container);
    return settled;
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
