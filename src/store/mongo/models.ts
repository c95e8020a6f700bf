import mongoose, { type Connection, type Model, Schema } from 'mongoose';
import type { AppliedDefinition, ContainerRecord, RetryIntent } from '../types.js';
import type { Transition } from '../transition.js';

/** A container document: `_id` is the container name. */
export type ContainerDoc = Omit<ContainerRecord, 'name' | 'incarnation' | 'retry'> & {
  _id: string;
  /** Absent on containers made before incarnations existed. */
  incarnation?: string;
  /** Set by a delete before it purges; a tombstoned container reads as gone. */
  deletedAt?: Date | null;
  /** Moved on (`$inc`) by every change runners cannot see through their own writes; see `ContainerHead`. */
  revision?: number;
  /** A retry begun and not ended yet (see `RetryIntent`). */
  retry?: RetryIntent | null;
  /** True when every task name of this incarnation is listed in its directory pages (containers made since they exist). */
  directory?: boolean;
  /** Number of this incarnation's entry in the container listing (see `ListingDoc`); absent on containers made before it existed. */
  listing?: number;
  /** Number of its entry in the list of its (final) status, set with the status by `finishContainer`; absent before it existed. */
  statusEntry?: number;
  /** The definition known applied at a revision (see `AppliedDefinition`); absent when none was recorded. */
  applied?: AppliedDefinition | null;
  /**
   * The declared graph's pages (see graph-pages.ts), written before this
   * document; `definition` is then null. Absent on containers made before
   * pages existed (their graph is in `definition`) and on 0.0.1 containers.
   */
  graph?: ContainerGraph | null;
};

/** Where a container's declared graph is stored: `pages` pages holding `tasks` tasks, with the graph's `GraphHash` fingerprint. */
export interface ContainerGraph {
  pages: number;
  tasks: number;
  fingerprint: string;
}

/**
 * A page of a container's declared graph: `_id` is `graphPageKey(container,
 * incarnation, seq)`, pages 0 … `ContainerGraph.pages - 1`, written once
 * before the container document, deleted by the purge of the incarnation.
 */
export interface GraphPageDoc {
  _id: string;
  container: string;
  incarnation: string;
  seq: number;
  /** In declaration order (objects, not `[name, dependsOn]` pairs: FerretDB v1 refuses nested arrays). */
  tasks: Array<{ name: string; dependsOn: string[] }>;
}

/** A task document: `_id` is `taskKey(container, name)`. */
export interface TaskDoc {
  _id: string;
  container: string;
  incarnation?: string;
  name: string;
  dependsOn: string[];
  handler: string;
  input: unknown;
  options: unknown;
  dynamic: boolean;
  addedBy: string | null;
  stagedBy?: number | null;
  order: number;
  createdAt: Date;
  /** Random per `addTasks` call: a retry recognises the documents its own lost try inserted. */
  nonce?: string;
}

/** A transition document: `_id` is `transitionKey(container, task, token)`. */
export type TransitionDoc = Transition & { _id: string };

/**
 * A page of a container's task directory: `_id` is `directoryKey(container,
 * incarnation, seq)`, pages numbered 0, 1, 2… without gaps. Lists names that
 * may have a task document (a name whose insert failed or was deleted has none).
 */
export interface DirectoryDoc {
  _id: string;
  container: string;
  incarnation: string;
  seq: number;
  names: string[];
  /** Random per page write: a retry recognises its own page. */
  nonce: string;
}

const common = { versionKey: false, minimize: false, autoIndex: false, autoCreate: false, strict: true } as const;
const Mixed = Schema.Types.Mixed;

const containerSchema = new Schema<ContainerDoc>(
  {
    _id: { type: String, required: true },
    status: { type: String, required: true, enum: ['running', 'succeeded', 'failed', 'cancelled'] },
    failFast: { type: Boolean, required: true },
    definition: { type: Mixed, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    finishedAt: { type: Date, default: null },
    cancelRequestedAt: { type: Date, default: null },
    incarnation: String,
    deletedAt: { type: Date, default: null },
    revision: { type: Number, default: 0 },
    retry: { type: Mixed, default: null },
    directory: Boolean,
    listing: Number,
    statusEntry: Number,
    applied: { type: Mixed, default: null },
    graph: { type: Mixed, default: null },
  },
  common,
);

// The dashboard's container list: newest first, optionally by status hint (src/store/mongo/container-list.ts).
containerSchema.index({ createdAt: -1, _id: -1 });
containerSchema.index({ status: 1, createdAt: -1, _id: -1 });

const taskSchema = new Schema<TaskDoc>(
  {
    _id: { type: String, required: true },
    container: { type: String, required: true },
    incarnation: String,
    name: { type: String, required: true },
    dependsOn: { type: [String], default: [] },
    handler: { type: String, required: true },
    input: { type: Mixed, default: null },
    options: { type: Mixed, required: true },
    dynamic: { type: Boolean, default: false },
    addedBy: { type: String, default: null },
    stagedBy: { type: Number, default: null },
    order: { type: Number, required: true },
    createdAt: { type: Date, required: true },
    nonce: String,
  },
  common,
);
taskSchema.index({ container: 1, incarnation: 1, name: 1 }, { unique: true });

const transitionSchema = new Schema<TransitionDoc>(
  {
    _id: { type: String, required: true },
    container: { type: String, required: true },
    incarnation: String,
    task: { type: String, required: true },
    token: { type: Number, required: true },
    kind: { type: String, required: true },
    at: { type: Date, required: true },
    runnerId: String,
    attempt: Number,
    leaseUntil: Date,
    progress: Number,
    statusText: String,
    checkpoint: Mixed,
    startProgress: Number,
    progressAt: Date,
    checkpointProgress: Number,
    leaseMs: Number,
    heartbeatMs: Number,
    leaseRenewedAt: Date,
    heartbeats: Number,
    output: Mixed,
    error: Mixed,
    retryAt: Date,
    reason: String,
    cause: Mixed,
    set: Mixed,
    nonce: String,
  },
  common,
);
transitionSchema.index({ container: 1, incarnation: 1, task: 1, token: 1 }, { unique: true });

const directorySchema = new Schema<DirectoryDoc>(
  {
    _id: { type: String, required: true },
    container: { type: String, required: true },
    incarnation: { type: String, required: true },
    seq: { type: Number, required: true },
    names: { type: [String], default: [] },
    nonce: { type: String, required: true },
  },
  common,
);
directorySchema.index({ container: 1 });

const graphPageSchema = new Schema<GraphPageDoc>(
  {
    _id: { type: String, required: true },
    container: { type: String, required: true },
    incarnation: { type: String, required: true },
    seq: { type: Number, required: true },
    tasks: { type: Mixed, default: [] },
  },
  common,
);
// The purge deletes an incarnation's pages by filter (reads are by `_id`).
graphPageSchema.index({ container: 1 });

/**
 * An entry of the container listing: `_id` is `listingKey(seq)`, numbered 0,
 * 1, 2… in creation order without gaps (see sequence.ts). Written before its
 * container document, never changed or deleted: it counts as the
 * container's only while the container document names the same `seq` in
 * its `listing` field (a deleted, re-created or never created container
 * leaves a dead entry that readers skip).
 */
export interface ListingDoc {
  _id: string;
  seq: number;
  container: string;
  incarnation: string;
  createdAt: Date;
  /** Random per entry write: a retried insert recognises its own entry. */
  nonce: string;
}

const listingSchema = new Schema<ListingDoc>(
  {
    _id: { type: String, required: true },
    seq: { type: Number, required: true },
    container: { type: String, required: true },
    incarnation: { type: String, required: true },
    createdAt: { type: Date, required: true },
    nonce: { type: String, required: true },
  },
  common,
);

/**
 * A slot document: one of the `limit` places of a limit shared by every
 * runner (`globalConcurrency`, a group's `global`), unique by (container,
 * incarnation, scope, index): taking a slot is an insert, and a duplicate
 * key means it is taken. Its `_id` is `slotKey(container, incarnation,
 * slot, nonce)`; deleted by that `_id` when released or evicted.
 */
export interface SlotDoc {
  _id: string;
  container: string;
  incarnation: string;
  scope: string;
  index: number;
  /** The task (and the log position of its claim) the slot was taken for. */
  task: string;
  token: number;
  runnerId: string;
  /** Random per acquisition: a release or an eviction deletes only this acquisition. */
  nonce: string;
  at: Date;
  /** Rate-limit tokens only: when their window is over (server time), for the sweep. */
  expiresAt?: Date;
}

const slotSchema = new Schema<SlotDoc>(
  {
    _id: { type: String, required: true },
    container: { type: String, required: true },
    incarnation: { type: String, default: '' },
    scope: { type: String, required: true },
    index: { type: Number, required: true },
    task: { type: String, required: true },
    token: { type: Number, required: true },
    runnerId: { type: String, required: true },
    nonce: { type: String, required: true },
    at: { type: Date, required: true },
    expiresAt: Date,
  },
  common,
);
slotSchema.index({ container: 1, incarnation: 1, scope: 1, index: 1 }, { unique: true });

/**
 * A gate document (see update-gate.ts): while it exists, its holder alone
 * updates the document named by `key`, on servers whose updates are not
 * atomic. Unique by `key`; its `_id` names the acquisition, and every delete
 * is by that exact `_id`, so a late release never removes the next holder's gate.
 */
export interface GateDoc {
  _id: string;
  key: string;
  at: Date;
  /** The holder's lease (ms): a waiter that sees this acquisition for that long takes the gate over. */
  leaseMs?: number;
}

const gateSchema = new Schema<GateDoc>(
  { _id: { type: String, required: true }, key: { type: String, required: true }, at: { type: Date, required: true }, leaseMs: Number },
  common,
);
gateSchema.index({ key: 1 }, { unique: true });

/** Indexes of earlier versions that did not know incarnations (dropped when indexes are ensured). */
export const LEGACY_INDEXES: Record<'tasks' | 'transitions', string> = {
  tasks: 'container_1_name_1',
  transitions: 'container_1_task_1_token_1',
};

/** The models of one store, bound to one connection. */
export interface StoreModels {
  containers: Model<ContainerDoc>;
  tasks: Model<TaskDoc>;
  transitions: Model<TransitionDoc>;
  directory: Model<DirectoryDoc>;
  graph: Model<GraphPageDoc>;
  slots: Model<SlotDoc>;
  listing: Model<ListingDoc>;
  gates: Model<GateDoc>;
}

/**
 * Registers the models on the given connection only (never on the global
 * mongoose), under prefixed names that cannot collide with the user's own
 * `Task` or `TaskContainer` models.
 */
export function bindModels(connection: Connection, prefix: string): StoreModels {
  const get = <T>(suffix: string, schema: Schema<T>): Model<T> => {
    const name = `${prefix}:${suffix}`;
    return (connection.models[name] as Model<T> | undefined) ?? connection.model<T>(name, schema, `${prefix}_${suffix}`);
  };
  return {
    containers: get('containers', containerSchema),
    tasks: get('tasks', taskSchema),
    transitions: get('transitions', transitionSchema),
    directory: get('directory', directorySchema),
    graph: get('graph', graphPageSchema),
    slots: get('slots', slotSchema),
    listing: get('listing', listingSchema),
    gates: bindGateModel(connection, prefix),
  };
}

/** The update gates of the stores of one prefix (`<prefix>_gates`; see update-gate.ts), registered on the given connection only. */
export function bindGateModel(connection: Connection, prefix: string): Model<GateDoc> {
  const name = `${prefix}:gates`;
  return (connection.models[name] as Model<GateDoc> | undefined) ?? connection.model<GateDoc>(name, gateSchema, `${prefix}_gates`);
}

/** Re-exported so callers outside the store never import mongoose for this. */
export const defaultConnection = (): Connection => mongoose.connection;
