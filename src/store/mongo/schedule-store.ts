import { type Connection, type Model, Schema } from 'mongoose';
import { InvalidOptionError } from '../../errors.js';
import {
  OPEN_SLOT_STATES,
  SLOT_STATES,
  slotKey,
  type EndedSlotState,
  type NewSlot,
  type ScheduleDescription,
  type ScheduleHead,
  type ScheduleStore,
  type SlotRecord,
  type TriggerRequest,
} from '../schedule-types.js';
import { isDuplicateKeyError } from './keys.js';
import { bindGateModel } from './models.js';
import { CausalSession } from './causal-session.js';
import { StoreOperations, type WriteOptions } from './operations.js';
import { updatesAreAtomic } from './server-kind.js';
import { UpdateGate } from './update-gate.js';
import { resolveStoreOptions, type OperationOptions } from './store-options.js';

interface HeadDoc {
  _id: string;
  cursor: Date;
  description?: ScheduleDescription | null;
  trigger?: TriggerRequest | null;
  handoverAt?: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

type SlotDoc = Omit<SlotRecord, 'id'> & { _id: string; updatedAt: Date };

/** Ownership of a container by one slot: `_id` is the container name. */
interface ContainerOwnerDoc {
  _id: string;
  slotId: string;
  claimedAt: Date;
}

const common = { versionKey: false, minimize: false, autoIndex: false, autoCreate: false, strict: true } as const;

const headSchema = new Schema<HeadDoc>(
  {
    _id: { type: String, required: true },
    cursor: { type: Date, required: true },
    description: { type: Schema.Types.Mixed, default: null },
    trigger: { type: Schema.Types.Mixed, default: null },
    handoverAt: { type: Date, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  common,
);

const slotSchema = new Schema<SlotDoc>(
  {
    _id: { type: String, required: true },
    schedule: { type: String, required: true },
    slot: { type: Date, required: true },
    container: { type: String, required: true },
    state: { type: String, required: true, enum: [...SLOT_STATES] },
    reason: { type: String, default: null },
    claimedBy: { type: String, required: true },
    claimedAt: { type: Date, required: true },
    startedAt: { type: Date, default: null },
    finishedAt: { type: Date, default: null },
    manual: { type: Boolean, default: false },
    updatedAt: { type: Date, required: true },
  },
  common,
);

const ownerSchema = new Schema<ContainerOwnerDoc>(
  {
    _id: { type: String, required: true },
    slotId: { type: String, required: true },
    claimedAt: { type: Date, required: true },
  },
  common,
);
// Used by MongoDB; FerretDB v1 scans (only `_id` lookups are indexed there),
// which is why the scheduler lists slots only at start-up and when a slot is due.
slotSchema.index({ schedule: 1, state: 1, slot: 1 });

/**
 * Options of {@link MongoScheduleStore.create}. Every operation runs under
 * `operationTimeoutMs` (default 10000 ms) with transient errors retried for
 * `writeRetryMs` (default 10000 ms), writes with `writeConcern` (default majority).
 */
export interface MongoScheduleStoreOptions extends OperationOptions {
  /**
   * Prefix of the collection names (`<prefix>_schedule_heads`, `<prefix>_schedule_slots`,
   * `<prefix>_schedule_containers`). @defaultValue 'pts'
   */
  collectionPrefix?: string;
}

/** The {@link ScheduleStore} over MongoDB (or FerretDB) through mongoose. */
export class MongoScheduleStore implements ScheduleStore {
  private constructor(
    private readonly heads: Model<HeadDoc>,
    private readonly slots: Model<SlotDoc>,
    private readonly owners: Model<ContainerOwnerDoc>,
    private readonly ops: StoreOperations,
  ) {}

  /**
   * An update of one head or slot document, under its update gate: several
   * schedulers and `pts schedules trigger` write heads at once, and on
   * servers whose updates are not atomic (FerretDB v1) one would overwrite
   * the other's fields, e.g. a trigger request lost under a cursor advance.
   */
  private update<T>(operation: string, key: string, fn: (o: WriteOptions) => Promise<T>): Promise<T> {
    return this.ops.writeGated(operation, key, fn);
  }

  /**
   * Binds the store to a connection and creates its collections and indexes if missing.
   * @throws InvalidOptionError for a bad `collectionPrefix`; TaskStatusError `PTS_INVALID_OPTION` for a bad timer or `causalConsistency` option
   */
  static async create(connection: Connection, options: MongoScheduleStoreOptions = {}): Promise<MongoScheduleStore> {
    const prefix = options.collectionPrefix ?? 'pts';
    if (!/^[A-Za-z][A-Za-z0-9_]{0,40}$/.test(prefix)) {
      throw new InvalidOptionError('collectionPrefix', `must match /^[A-Za-z][A-Za-z0-9_]{0,40}$/, got ${JSON.stringify(prefix)}`);
    }
    const resolved = resolveStoreOptions(options);
    const bind = <T>(suffix: string, schema: Schema<T>): Model<T> => {
      const name = `${prefix}:${suffix}`;
      return (connection.models[name] as Model<T> | undefined) ?? connection.model<T>(name, schema, `${prefix}_${suffix}`);
    };
    const heads = bind('schedule_heads', headSchema);
    const slots = bind('schedule_slots', slotSchema);
    const owners = bind('schedule_containers', ownerSchema);
    await connection.asPromise();
    await ensureCollection(heads);
    await ensureCollection(slots);
    await ensureCollection(owners);
    const ops = new StoreOperations(resolved);
    if (!(await updatesAreAtomic(connection))) {
      const gates = bindGateModel(connection, prefix);
      await ensureCollection(gates);
      await gates.createIndexes();
      ops.gate = new UpdateGate(gates, resolved);
    }
    ops.causal = await CausalSession.open(connection, options.causalConsistency);
    return new MongoScheduleStore(heads, slots, owners, ops);
  }

  /**
   * The schedule's head, created with `initialCursor` when missing.
   * Operations of this store throw OperationTimeoutError when the server gave
   * no reply within `operationTimeoutMs` and retries ran out.
   */
  async openHead(schedule: string, initialCursor: Date, description?: ScheduleDescription): Promise<ScheduleHead> {
    const found = await this.findHead(schedule);
    if (found) {
      if (description && JSON.stringify(found.description ?? null) !== JSON.stringify(description)) {
        await this.update('openHead', `schedule_heads:${schedule}`, (o) => this.heads.updateOne({ _id: schedule }, { $set: { description } }, o).exec());
        return toHead({ ...found, description });
      }
      return toHead(found);
    }
    const now = new Date();
    const doc: HeadDoc = { _id: schedule, cursor: initialCursor, description: description ?? null, trigger: null, handoverAt: null, createdAt: now, updatedAt: now };
    try {
      await this.ops.write('openHead', (o) => this.heads.create([doc], this.ops.saveOptions(o)));
      return toHead(doc);
    } catch (error) {
      // Created meanwhile, by another scheduler or by our own try whose reply was lost.
      if (!isDuplicateKeyError(error)) throw error;
      const existing = await this.findHead(schedule);
      if (!existing) throw error;
      return toHead(existing);
    }
  }

  /** Every schedule's head, by name (one scan of the small heads collection; for inspection). */
  async listHeads(): Promise<ScheduleHead[]> {
    const docs = await this.ops.read('listHeads', () => this.ops.q(this.heads.find({}).sort({ _id: 1 })).lean<HeadDoc[]>().exec());
    return docs.map(toHead);
  }

  private findHead(schedule: string): Promise<HeadDoc | null> {
    return this.ops.read('openHead', () => this.ops.q(this.heads.findById(schedule)).lean<HeadDoc>().exec());
  }

  async getHead(schedule: string): Promise<ScheduleHead | null> {
    const doc = await this.findHead(schedule);
    return doc ? toHead(doc) : null;
  }

  async requestTrigger(schedule: string, request: TriggerRequest): Promise<boolean> {
    const r = await this.update('requestTrigger', `schedule_heads:${schedule}`, (o) =>
      this.heads.updateOne({ _id: schedule }, { $set: { trigger: request, updatedAt: new Date() } }, o).exec(),
    );
    return r.matchedCount > 0;
  }

  async clearTrigger(schedule: string, request: TriggerRequest): Promise<void> {
    // Only the request that was served: a newer one written meanwhile stays.
    await this.update('clearTrigger', `schedule_heads:${schedule}`, (o) =>
      this.heads
        .updateOne({ _id: schedule, 'trigger.requestedAt': request.requestedAt }, { $set: { trigger: null, updatedAt: new Date() } }, o)
        .exec(),
    );
  }

  async signalHandover(schedule: string): Promise<void> {
    const now = new Date();
    await this.update('signalHandover', `schedule_heads:${schedule}`, (o) => this.heads.updateOne({ _id: schedule }, { $set: { handoverAt: now, updatedAt: now } }, o).exec());
  }

  async claimContainer(container: string, slotId: string): Promise<{ owner: string; inserted: boolean }> {
    let tries = 0;
    try {
      await this.ops.write('claimContainer', (o) => {
        tries++;
        return this.owners.create([{ _id: container, slotId, claimedAt: new Date() }], this.ops.saveOptions(o));
      });
      return { owner: slotId, inserted: true };
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      const stored = await this.ops.read('claimContainer', () => this.ops.q(this.owners.findById(container)).lean<ContainerOwnerDoc>().exec());
      if (!stored) throw error;
      // A retry after a lost reply meets our own insert: it counts as inserted by us.
      return { owner: stored.slotId, inserted: tries > 1 && stored.slotId === slotId };
    }
  }

  async advanceHead(schedule: string, cursor: Date): Promise<void> {
    // `$max` keeps the newest cursor (under the gate where updates are not atomic).
    await this.update('advanceHead', `schedule_heads:${schedule}`, (o) =>
      this.heads.updateOne({ _id: schedule }, { $max: { cursor }, $set: { updatedAt: new Date() } }, o).exec(),
    );
  }

  /**
   * Claims a slot by inserting it under its deterministic `_id`; false when
   * another scheduler holds it. A retry after a lost reply that meets a slot
   * with our `claimedBy` and `claimedAt` counts it as ours.
   */
  async claimSlot(slot: NewSlot): Promise<boolean> {
    const now = new Date();
    const doc: SlotDoc = {
      _id: slotKey(slot.schedule, slot.slot),
      ...slot,
      claimedAt: now,
      startedAt: slot.state === 'started' ? now : null,
      finishedAt: slot.state === 'skipped' ? now : null,
      manual: slot.manual ?? false,
      updatedAt: now,
    };
    let tries = 0;
    try {
      await this.ops.write('claimSlot', (o) => {
        tries++;
        return this.slots.create([doc], this.ops.saveOptions(o));
      });
      return true;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      if (tries === 1) return false;
      const stored = await this.ops.read('claimSlot', () => this.ops.q(this.slots.findById(doc._id)).lean<SlotDoc>().exec());
      return stored?.claimedBy === doc.claimedBy && stored.claimedAt.getTime() === now.getTime();
    }
  }

  async getSlot(schedule: string, slot: Date): Promise<SlotRecord | null> {
    const doc = await this.ops.read('getSlot', () => this.ops.q(this.slots.findById(slotKey(schedule, slot))).lean<SlotDoc>().exec());
    return doc ? toSlot(doc) : null;
  }

  async listOpenSlots(schedule: string): Promise<SlotRecord[]> {
    const filter = { schedule, state: { $in: [...OPEN_SLOT_STATES] } };
    const docs = await this.ops.read('listOpenSlots', () => this.ops.q(this.slots.find(filter), 6).lean<SlotDoc[]>().exec(), 6);
    return docs.map(toSlot).sort(bySlot);
  }

  async listSlots(schedule: string): Promise<SlotRecord[]> {
    const docs = await this.ops.read('listSlots', () => this.ops.q(this.slots.find({ schedule }), 6).lean<SlotDoc[]>().exec(), 6);
    return docs.map(toSlot).sort(bySlot);
  }

  async deleteEndedSlots(schedule: string, before: Date): Promise<number> {
    const filter = { schedule, slot: { $lt: before }, state: { $nin: [...OPEN_SLOT_STATES] } };
    const result = await this.ops.write('deleteEndedSlots', (o) => this.slots.deleteMany(filter, o).exec());
    return result.deletedCount;
  }

  async releaseContainers(containers: readonly string[]): Promise<number> {
    let released = 0;
    // Exact `_id` deletes: served by the index on every server.
    for (const _id of containers) {
      released += (await this.ops.write('releaseContainers', (o) => this.owners.deleteOne({ _id }, o).exec())).deletedCount;
    }
    return released;
  }

  async markSlotStarted(schedule: string, slot: Date): Promise<void> {
    const now = new Date();
    // Idempotent: a repeat finds the slot started and changes nothing.
    await this.update('markSlotStarted', `schedule_slots:${slotKey(schedule, slot)}`, (o) =>
      this.slots
        .updateOne({ _id: slotKey(schedule, slot), state: { $in: [...OPEN_SLOT_STATES] } }, { $set: { state: 'started', startedAt: now, updatedAt: now } }, o)
        .exec(),
    );
  }

  async finishSlot(
    schedule: string,
    slot: Date,
    state: EndedSlotState,
    reason: string | null = null,
  ): Promise<void> {
    const now = new Date();
    // Idempotent: a repeat finds the slot finished and changes nothing.
    await this.update('finishSlot', `schedule_slots:${slotKey(schedule, slot)}`, (o) =>
      this.slots
        .updateOne({ _id: slotKey(schedule, slot), state: { $in: [...OPEN_SLOT_STATES] } }, { $set: { state, reason, finishedAt: now, updatedAt: now } }, o)
        .exec(),
    );
  }
}

async function ensureCollection<T>(m: Model<T>): Promise<void> {
  try {
    await m.createCollection();
  } catch (error) {
    if ((error as { code?: number }).code !== 48) throw error; // 48: exists (maybe a racing process)
  }
  await m.createIndexes();
}

const bySlot = (a: SlotRecord, b: SlotRecord): number => a.slot.getTime() - b.slot.getTime();

function toHead(doc: HeadDoc): ScheduleHead {
  return {
    schedule: doc._id,
    cursor: doc.cursor,
    description: doc.description ?? null,
    trigger: doc.trigger ?? null,
    handoverAt: doc.handoverAt ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function toSlot(doc: SlotDoc): SlotRecord {
  return {
    id: doc._id,
    schedule: doc.schedule,
    slot: doc.slot,
    container: doc.container,
    state: doc.state,
    reason: doc.reason ?? null,
    claimedBy: doc.claimedBy,
    claimedAt: doc.claimedAt,
    startedAt: doc.startedAt ?? null,
    finishedAt: doc.finishedAt ?? null,
    manual: doc.manual ?? false,
  };
}
