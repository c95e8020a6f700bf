import type { ResolvedTaskOptions } from '../definition/options.js';
import type { Transition } from './transition.js';

/** Where a task is in its life. */
export type TaskStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

/** Statuses a task never leaves on its own. */
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);

/** Where a container is in its life. */
export type ContainerStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';

/** One failed attempt's error, as persisted. */
export interface PersistedError {
  name: string;
  message: string;
  code: string | null;
  stack: string | null;
  attempt: number;
  at: Date;
}

/** A container as stored. */
export interface ContainerRecord {
  name: string;
  /**
   * Derived from its tasks whenever the store reads it (see
   * `deriveContainerState`): the value written by `finishContainer` is only a
   * hint for people reading the database, never trusted.
   */
  status: ContainerStatus;
  failFast: boolean;
  /**
   * Tasks declared in code (name and dependencies, in declaration order), or
   * null when created through the 0.0.1 API, or when the read that made this
   * record left the declared graph out (see `TaskStore.createContainer`).
   */
  definition: ReadonlyArray<{ readonly name: string; readonly dependsOn: readonly string[] }> | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  cancelRequestedAt: Date | null;
  /**
   * Random id made when the container was created; part of the `_id` of its
   * tasks and transitions. Empty for containers made before it existed.
   */
  incarnation?: string;
  /**
   * A retry begun by `retryTasks` and not finished yet (its process may have
   * died half-way): whoever reads it finishes it (see `completeRetry`).
   */
  retry?: RetryIntent | null;
}

/**
 * The resets a retry is making, recorded on the container before the first
 * of them: each task is reset at the position after `token` (where it was
 * failed, skipped or cancelled when the retry began).
 */
export interface RetryIntent {
  /** Random per retry: only the retry that began it ends it. */
  id: string;
  tasks: Array<{ task: string; token: number }>;
}

/** The static part of a task: what it is, not where it is. */
export interface TaskRecord {
  container: string;
  name: string;
  dependsOn: string[];
  /** Key of the handler that runs it. */
  handler: string;
  input: unknown;
  options: ResolvedTaskOptions;
  /** True for tasks added at run time (excluded from definition-conflict checks). */
  dynamic: boolean;
  /** The task whose handler added it, if any. */
  addedBy: string | null;
  /**
   * For a task added at run time: the log position of the claim of the
   * `addedBy` attempt that staged it. It is part of the container only once
   * that attempt's success is recorded (the position after it): tasks added
   * by an attempt that failed or was fenced off never exist.
   */
  stagedBy?: number | null;
  /** Sort key: declaration order. */
  order: number;
  createdAt: Date;
}

/** A task's state, derived from its transition log. */
export interface TaskState {
  status: TaskStatus;
  /** Fencing token: the position of the last transition in this task's log (0 = none). */
  token: number;
  /** Claims so far (every attempt, including ones recovered after a crash). */
  attempt: number;
  /** Failed attempts since the last reset; retries left = options.retries - failures + 1. */
  failures: number;
  /** Takeovers of an expired lease since the last reset. */
  recoveries: number;
  /**
   * Releases by a holder that fenced itself off because its lease lapsed
   * (its event loop was blocked, or the database out of reach), since the last reset.
   */
  lapses: number;
  /** A pending task is not claimed before this time (retry backoff). */
  notBefore: Date | null;
  runnerId: string | null;
  leaseUntil: Date | null;
  /** The holder's lease length (ms) as recorded in its claim; null when unknown. */
  leaseMs: number | null;
  /** The holder's heartbeat interval (ms) as recorded in its claim; null when it sends none. */
  heartbeatMs: number | null;
  /**
   * The database server's time of the holder's latest lease renewal (its
   * claim or last heartbeat); null when not stamped (claims of older
   * versions, leases set by hand). Compared only with the server's own time.
   */
  leaseRenewedAt: Date | null;
  /** Lease renewals (heartbeats) of the current claim so far, as counted by the server; 0 when none. */
  heartbeats: number;
  /** 0..1 within the current or last attempt; 1 once succeeded. */
  progress: number;
  /** When the current or last attempt last wrote its progress; null before it did. */
  progressAt: Date | null;
  /** 0..1: the progress the current or last attempt started from (its checkpoint's). */
  startProgress: number;
  /** 0..1: the progress reported when the last checkpoint was written; a resumed attempt starts here. */
  checkpointProgress: number;
  statusText: string;
  /** Last checkpointed state, carried from attempt to attempt. */
  checkpoint: unknown;
  output: unknown;
  lastError: PersistedError | null;
  errors: PersistedError[];
  /** Start of the current or last attempt. */
  startedAt: Date | null;
  firstStartedAt: Date | null;
  endedAt: Date | null;
  /** Duration of the attempt that ended the task. */
  durationMs: number | null;
  /** Why a task was skipped or cancelled. */
  reason: string | null;
  /** The task (and its position) whose state made this one skipped or cancelled; null otherwise. */
  cause: TaskCause | null;
  /** While running: the position of the claim of the current attempt (null otherwise). */
  claimToken: number | null;
}

/** The task, at one position of its log, that decided a skip or a cancel (position -1: it did not exist). */
export interface TaskCause {
  task: string;
  token: number;
}

/** A task's record and derived state, read together. */
export interface TaskSnapshot {
  record: TaskRecord;
  state: TaskState;
}

/** Everything a runner needs to plan its next step, read in one go. */
export interface ContainerSnapshot {
  container: ContainerRecord;
  tasks: TaskSnapshot[];
  /** When the read started, on the reader's wall clock. */
  readAt: Date;
  /** The container's revision when it was read (see {@link ContainerHead}); absent from stores that keep none. */
  revision?: number;
  /**
   * Tasks left out because the attempt that staged them (`addedBy` at claim
   * position `stagedBy`) had no recorded success when read: once that
   * attempt's log moves on, they may exist.
   */
  hiddenStaged?: Array<{ addedBy: string; stagedBy: number }>;
  /**
   * The database server's time just before the read (see
   * {@link TaskStore.serverTime}), when the reader asked for it: status
   * reports judge each holder's liveness on this clock.
   */
  serverReadAt?: Date | null;
  /**
   * The definition fingerprint recorded on the container and the revision it
   * was recorded at (see {@link TaskStore.recordApplied}); null when none.
   */
  applied?: AppliedDefinition | null;
  /**
   * True when the task records are the ones given in
   * {@link SnapshotOptions.declared} (the container's applied fingerprint
   * matched at the revision read), so the task documents were not read.
   */
  fromDeclared?: boolean;
}

/**
 * A definition known to be applied to a container: its tasks are exactly the
 * tasks of the definition with this fingerprint, with these records, as read
 * at `revision`. Every change of task records, and every task added or
 * deleted, moves the revision on, so it holds while the revision is still `revision`.
 */
export interface AppliedDefinition {
  /** See `definitionFingerprint` (hex SHA-256). */
  fingerprint: string;
  revision: number;
  /**
   * No task was running or failed for good in the read that recorded it. A
   * failure for good moves the revision on before it is written, so while
   * the revision stands still, none has happened since either.
   */
  quiet: boolean;
}

/** What {@link TaskStore.loadSnapshot} reads. */
export interface SnapshotOptions {
  /**
   * Read the outputs of succeeded tasks. Without them, a succeeded task's
   * `state.output` is {@link OUTPUT_NOT_READ}: a runner reads an output only
   * for the task about to start that depends on it. @defaultValue true
   */
  outputs?: boolean;
  /**
   * Read the tasks and their logs at once instead of one after the other.
   * A task inserted meanwhile may then be missing although an entry of its
   * adder's log that makes it visible was read: only for readers that watch
   * the container's revision, which moves on after every insert of tasks
   * (a runner). @defaultValue false
   */
  parallel?: boolean;
  /**
   * The task records the caller expects, with the fingerprint of the
   * definition they come from: when the container's applied fingerprint is
   * this one and its revision has not moved since it was recorded, these
   * records are used and the task documents are not read (about half the
   * work of a read of a large container), nor the declared graph of the
   * container document (`graph` stands for it); otherwise they are read as usual.
   * Used by a runner's first read. Small containers read by `_id` read them anyway.
   */
  declared?: {
    fingerprint: string;
    graph: ContainerRecord['definition'] & object;
    /** `graphFingerprint` of `graph`: it stands for a stored graph with this fingerprint, applied or not, so the graph's pages are not read. */
    graphFingerprint?: string;
    records: () => TaskRecord[];
  };
  /**
   * The declared graph of the container's incarnation `incarnation`, as the
   * caller holds it already (read or compared by its first read). A graph is
   * written once, with the incarnation it belongs to, and never changes: a
   * read of that incarnation takes this one instead of reading it again (the
   * graph's pages, or the container document's `definition` field on
   * containers made before pages: about 14 MB at 100k tasks, decoded in one
   * call). Another incarnation's graph is read as usual. Used by a runner's
   * full reads after its first.
   */
  knownGraph?: { incarnation: string; definition: NonNullable<ContainerRecord['definition']> };
}

/** `state.output` of a succeeded task whose output was not read (see {@link SnapshotOptions.outputs}). */
export const OUTPUT_NOT_READ: unique symbol = Symbol('persistent-task-status: output not read');

/**
 * A container's stored fields, read without its tasks. It has no status: a
 * container's status is derived from all its tasks (read `loadSnapshot` for it).
 */
export type ContainerFields = Omit<ContainerRecord, 'status' | 'finishedAt'>;

/** One task read on its own (`TaskStore.loadTask`), with its container's head. */
export interface TaskRead {
  container: ContainerFields;
  /** The task with its derived state, or null when the container has no such task. */
  task: TaskSnapshot | null;
}

/** Some tasks' records read on their own (`TaskStore.loadTaskRecords`), with their container's head. */
export interface TaskRecordsRead {
  container: ContainerFields;
  /** The records of the named tasks that exist, in the order they were asked for (each once). */
  records: TaskRecord[];
}

/** Proof of an exclusive claim on one attempt of a task. */
/**
 * A claim that takes over the slot of an attempt whose handler has settled
 * while its outcome is still being written: the claim is written behind that
 * outcome (in the same ordered insert, right after it) or, when that cannot
 * be, once the outcome is recorded or `over` settles. The database thus never
 * shows both as running at once, and the slot costs one round trip, not two.
 */
export interface ClaimOrder {
  /** The attempt whose outcome must be stored first (written at `outcomeOf.token + 1`). */
  outcomeOf: Claim;
  /** Settles once that attempt is over: its outcome recorded, or given up on. */
  over: Promise<unknown>;
}

export interface Claim {
  container: string;
  /** The container's incarnation the claim was made in; its writes go there, even after a re-create. */
  incarnation?: string;
  task: string;
  /** Fencing token of the claim; the attempt's outcome is written at `token + 1`. */
  token: number;
  attempt: number;
  runnerId: string;
  claimedAt: Date;
  leaseUntil: Date;
  /** 0..1: the progress the attempt starts from (that of the checkpoint it resumes). */
  progress: number;
  /**
   * Random value written with the claim; its outcome carries `<nonce>:<kind>`
   * (one nonce per outcome kind, so a failure written in place of a success
   * never takes that success for its own). A write repeated after a lost
   * reply finds its own nonce and knows it won.
   * Absent on claims read back from stores that do not write one.
   */
  nonce?: string;
}

/** Fields a running attempt updates in place (heartbeat, progress, checkpoint). */
export interface AttemptPatch {
  leaseUntil?: Date;
  progress?: number;
  statusText?: string;
  checkpoint?: unknown;
  /** When `progress` was reported; written with it. */
  progressAt?: Date;
  /** 0..1: the progress at the time `checkpoint` was taken; written with it. */
  checkpointProgress?: number;
}

/** How an attempt ended. */
export type AttemptOutcome =
  | { kind: 'succeeded'; output: unknown }
  | { kind: 'failed'; error: PersistedError; retryAt: Date | null }
  /**
   * Given back unfinished. `lapsed`: why the holder fenced itself off (its
   * lease could no longer be proven, e.g. its event loop was blocked); such a
   * release counts in the task's `lapses`.
   */
  | { kind: 'released'; lapsed?: string }
  | { kind: 'cancelled'; reason: string };

/**
 * Fields set directly on a task's state, for callers that drive tasks by hand
 * (the 0.0.1 API's `updateTask`). Unset fields keep their values.
 */
export interface TaskEdit {
  status?: TaskStatus;
  progress?: number;
  statusText?: string;
  checkpoint?: unknown;
  attempt?: number;
  startedAt?: Date | null;
  endedAt?: Date | null;
  leaseUntil?: Date | null;
  /** Kept as given until the engine or an edit of the times writes a newer one. */
  durationMs?: number | null;
}

/** Transitions written by whoever holds the current token (not by a running attempt). */
export type SettleOutcome =
  | { kind: 'skipped'; reason: string; cause?: TaskCause | null }
  | { kind: 'cancelled'; reason: string; cause?: TaskCause | null }
  | { kind: 'reset' }
  | { kind: 'edited'; set: TaskEdit };

/** The container document as stored (its status not derived), for incremental readers. */
export interface ContainerHead {
  /** The container's stored fields but its declared graph (read `loadSnapshot` for that). */
  record: Omit<ContainerRecord, 'definition'>;
  /**
   * Moves on with every change a runner cannot see through its own writes:
   * a cancel request, tasks added, edited or deleted, a reset or hand edit
   * of a task, changed options. A runner that sees it move reads everything again.
   */
  revision: number;
  /** The definition recorded applied on the container (see {@link AppliedDefinition}); null or absent when none. */
  applied?: AppliedDefinition | null;
}

/** A task to add to a container. */
export type NewTask = Omit<TaskRecord, 'container' | 'createdAt' | 'order'>;

/**
 * Where a page of {@link TaskStore.listContainerPage} goes on: below entry
 * `seq` of the store's container listing, below entry `finished` of the list
 * of the query's final status, or among the containers made
 * before the listing existed (`legacy`: after this one, or from the newest
 * when null). Made by the store; pass back the `next` of the previous page.
 */
export type ContainerPageCursor = { seq: number } | { finished: number } | { legacy: { createdAt: Date; name: string } | null };

/** Which containers {@link TaskStore.listContainerPage} returns. */
export interface ContainerPageQuery {
  /** 1..200 containers per page. */
  limit: number;
  /** The `next` cursor of the previous page; absent for the first page. */
  after?: ContainerPageCursor | null;
  /** Only containers whose stored status hint is this one (see {@link ContainerRecord.status}). */
  status?: ContainerStatus;
  /** Only containers whose name starts with this text (case-sensitive). */
  namePrefix?: string;
  /**
   * Most containers examined for this page (`limit`..5000): with a filter, a
   * page may hold fewer than `limit` containers and a `next` cursor that goes
   * on where it stopped, so no page reads without bound.
   * @defaultValue 8 × limit
   */
  examine?: number;
}

/** One page of containers, newest first, with their stored status hints and no definitions. */
export interface ContainerPage {
  containers: ContainerRecord[];
  /** The cursor of the next page, or null when no container is left to examine. */
  next: ContainerPageCursor | null;
  /** Containers examined for this page (matching or not). */
  examined: number;
}

/** Which attempt a stored trace context belongs to. */
export interface AttemptTraceKey {
  container: string;
  incarnation: string;
  task: string;
  attempt: number;
}

/** A container to create. */
export interface NewContainer {
  name: string;
  failFast: boolean;
  definition: ContainerRecord['definition'];
}

/** What a runner asks for when it claims an attempt. */
export interface NewClaim {
  runnerId: string;
  attempt: number;
  leaseMs: number;
  /** The checkpoint the attempt resumes from. */
  checkpoint: unknown;
  /** 0..1: the progress that checkpoint stands for (shown until the attempt reports its own). @defaultValue 0 */
  progress?: number;
  /** The claimer's heartbeat interval (ms), so readers can tell a silent holder. @defaultValue null (no heartbeats) */
  heartbeatMs?: number | null;
}

/**
 * One place of a limit shared by runners: the `index`-th of its scope (`all`:
 * globalConcurrency; `group:<name>`: a group's global limit;
 * `rate:<group>:<window>`: a start in one window of a group's rate limit).
 */
export interface SlotId {
  scope: string;
  index: number;
  /**
   * For slots never released once used (rate-limit tokens): the server time
   * after which {@link TaskStore.sweepSlots} deletes them. Absent: released by their holder.
   */
  expiresAt?: Date;
}

/** Who takes slots: the task and the log position its claim will take. */
export interface SlotHolder {
  task: string;
  token: number;
  runnerId: string;
}

/** A slot as stored: who holds it, under which acquisition. */
export interface SlotHolding extends SlotId, SlotHolder {
  /** Random per acquisition; a release or an eviction deletes only this one. */
  nonce: string;
  /** Taken by a pre-release version whose slot key lacked the nonce (evicted by key and nonce). */
  legacy?: true;
}

/** Slots taken together by one acquisition, released together. */
export interface HeldSlots {
  container: string;
  ids: SlotId[];
  nonce: string;
}

/** What {@link TaskStore.acquireSlots} got: every slot asked for, or none and who holds the ones taken. */
export type SlotAcquisition = { held: HeldSlots } | { taken: SlotHolding[] };

/**
 * The persistence interface, in the engine's words. Every transition of a
 * task is exclusive: it is appended at the next position of the task's log,
 * and only one writer can take a position.
 */
export interface TaskStore {
  /**
   * Creates the container unless it exists; racing callers create exactly one.
   * For an existing container, `record.status` is the stored hint, not derived
   * (its tasks are not read): read {@link loadSnapshot} for the status; its
   * `definition` is null (the declared graph is not read either). A created
   * container's declared graph is stored before the container is, so a
   * container never reads as declaring fewer tasks than it was created with.
   */
  createContainer(input: NewContainer): Promise<{ record: ContainerRecord; created: boolean }>;
  getContainer(name: string): Promise<ContainerRecord | null>;
  listContainers(): Promise<ContainerRecord[]>;
  /**
   * One page of containers, newest first, with bounded reads whatever the
   * number of containers (a cursor, a limit, at most `examine` containers
   * examined, each read under the time limit); statuses are the stored
   * hints, tasks are not read.
   */
  listContainerPage(query: ContainerPageQuery): Promise<ContainerPage>;
  /**
   * Deletes a container with its tasks and history; false when it did not
   * exist. It is tombstoned first (it reads as gone at once), then what is
   * stored under that incarnation is purged (never a container created again
   * under the same name meanwhile).
   * Late writes of runners still mid-attempt carry the old incarnation, so
   * they never show in a container created again under the same name.
   */
  deleteContainer(name: string): Promise<boolean>;
  /** Records the container's final status as a hint for raw readers (idempotent); reads derive it from the tasks. */
  finishContainer(name: string, status: Exclude<ContainerStatus, 'running'>): Promise<void>;
  /** Puts a finished container back to running (after tasks were reset). */
  reopenContainer(name: string): Promise<void>;
  /**
   * Records a retry's resets on the container before any of them is written
   * (replacing an unfinished one), and moves the revision on; false when the
   * container does not exist.
   */
  beginRetry(name: string, intent: RetryIntent): Promise<boolean>;
  /**
   * Ends the retry `id` once its resets are written: the container is
   * reopened (running, cancel request cleared), the intent cleared, the
   * revision moved on. Nothing happens when another call ended it already.
   */
  endRetry(name: string, id: string): Promise<void>;
  /**
   * Records that the container's tasks are exactly those of the definition
   * with `applied.fingerprint`, as read at `applied.revision` (see
   * {@link AppliedDefinition}); one write by `_id`, the revision unchanged.
   * Optional: a store without it reads every task at each runner's start.
   */
  recordApplied?(name: string, applied: AppliedDefinition): Promise<void>;
  /** Changes the container's options (a definition changed between runs). */
  updateContainer(name: string, patch: { failFast?: boolean }): Promise<void>;
  /** Asks every runner of the container to cancel it. */
  requestCancel(name: string): Promise<boolean>;

  /**
   * Adds tasks, idempotently by name; returns the names actually inserted. A
   * task with `stagedBy` takes the place of one of the same name staged by an
   * earlier attempt of the same adder whose success was never recorded.
   */
  addTasks(container: string, tasks: NewTask[]): Promise<string[]>;
  /** Replaces the static fields of a task that exists (0.0.1 `updateTask`). */
  updateTaskRecord(container: string, name: string, patch: Partial<NewTask>): Promise<boolean>;
  /** Deletes one task and its history; false when it did not exist. */
  deleteTask(container: string, name: string): Promise<boolean>;
  /**
   * The container with all its tasks and their derived states, or null (also
   * once a delete tombstoned it). The container's status is derived from its
   * tasks; staged tasks whose attempt has not succeeded are left out; only
   * documents of the container's current incarnation are read.
   */
  loadSnapshot(container: string, options?: SnapshotOptions): Promise<ContainerSnapshot | null>;
  /**
   * One task of a container with its derived state, without reading the
   * others: a fixed number of commands whatever the container's size. Null
   * when the container does not exist (or was tombstoned); `task` is null when
   * it has no such task. The same rules as `loadSnapshot` (current
   * incarnation only, staged tasks only once their attempt succeeded).
   */
  loadTask(container: string, task: string): Promise<TaskRead | null>;
  /**
   * The records (no state) of the named tasks that exist, with the container's
   * head; null when the container does not exist. One command for the
   * container plus one exact lookup per name, whatever the container's size.
   */
  loadTaskRecords(container: string, tasks: readonly string[]): Promise<TaskRecordsRead | null>;
  /**
   * The records of the tasks whose `dependsOn` names `task`, in declaration
   * order (empty when none, or when the container does not exist). One query;
   * only the dependents are returned.
   */
  loadDependents(container: string, task: string): Promise<TaskRecord[]>;

  /**
   * The database server's current time, the one clock every machine shares
   * (lease renewals are stamped with it); null when the server does not say.
   * Optional: readers of stores without it judge by wall clocks.
   */
  serverTime?(): Promise<Date | null>;

  /**
   * Stores the W3C `traceparent` of an attempt's span (tracing with an
   * OpenTelemetry SDK), for the attempt after it to link to. Optional.
   */
  saveTrace?(key: AttemptTraceKey, traceparent: string): Promise<void>;
  /** The `traceparent` stored for an attempt, or null (one read by `_id`). Optional. */
  readTrace?(key: AttemptTraceKey): Promise<string | null>;
  /** The slots among `ids` that are held now (one read; the slots of a container are few). */
  readSlots(container: string, ids: readonly SlotId[]): Promise<SlotHolding[]>;
  /**
   * Takes all of `ids` at once for `holder` (one insert; each slot is unique
   * by its `_id`, so a taken one fails with a duplicate key), or none: when
   * any was taken, the ones this call inserted are deleted again and the
   * holders of the taken ones are returned.
   */
  acquireSlots(container: string, ids: readonly SlotId[], holder: SlotHolder): Promise<SlotAcquisition>;
  /** Releases slots: deletes them only where they still carry this acquisition's nonce (one delete). */
  releaseSlots(held: HeldSlots): Promise<void>;
  /** Deletes a slot held by a holder judged gone, only if that same acquisition still holds it; false when it did not. */
  evictSlot(container: string, holding: SlotHolding): Promise<boolean>;
  /**
   * Moves the `expiresAt` of the slots one acquisition holds (one update by
   * exact `_id`s); false when it holds none of them any more. Optional: a
   * store without it has no runner roster (see the engine's Roster).
   */
  renewSlots?(held: HeldSlots, expiresAt: Date): Promise<boolean>;
  /** Deletes the slots of a container whose `expiresAt` is before `before` (one delete); returns how many. */
  sweepSlots(container: string, before: Date): Promise<number>;

  /**
   * Claims the attempt after `expectedToken`; null when another writer got
   * there first, and then `onTaken`, when given, is called with the entry
   * that holds the position (when the store read it back anyway; outputs left out).
   * With `after`, the claim never becomes visible before the outcome of that
   * attempt: it rides in the same write right behind the outcome, or waits
   * until the outcome is recorded or the attempt is over (see {@link ClaimOrder}).
   */
  claimTask(
    container: string,
    task: string,
    expectedToken: number,
    claim: NewClaim,
    onTaken?: (entry: Transition) => void,
    after?: ClaimOrder,
  ): Promise<Claim | null>;
  /** Updates a running attempt in place; throws {@link LeaseLostError} once it was taken over. */
  updateAttempt(claim: Claim, patch: AttemptPatch): Promise<void>;
  /**
   * Records how an attempt ended; resolves with the kind of outcome that now
   * stands for this claim: `outcome.kind`, or the kind of an earlier outcome
   * of the same claim that landed first (a success whose reply was lost,
   * met by a failure written in its place). Idempotent: repeating it after an
   * error whose reply was lost resolves when the first write had landed.
   * @throws LeaseLostError once the attempt was taken over
   * @throws UnstorableValueError when the output cannot be stored (nothing written)
   */
  finishAttempt(claim: Claim, outcome: AttemptOutcome, endedAt?: Date): Promise<AttemptOutcome['kind']>;
  /**
   * Throws {@link UnstorableValueError} for the first task input this store's
   * server cannot store faithfully (path and rule named), before anything is
   * written. Optional: stores without server-specific rules omit it.
   */
  assertStorableInputs?(tasks: ReadonlyArray<{ name: string; input?: unknown }>): Promise<void>;
  /**
   * The container document with its revision (one read by `_id`); null once
   * deleted or tombstoned. Its status is the stored hint, not derived; its
   * declared graph is not read (a runner polls the head).
   */
  readContainerHead(container: string): Promise<ContainerHead | null>;
  /** One task's log entries from position `fromToken` on (reads by `_id` until a free position, or `limit` entries). */
  readLog(container: string, task: string, fromToken: number, limit?: number): Promise<Transition[]>;
  /** Outputs of the given `succeeded` entries (task and position), by task name; missing ones are left out. */
  readOutputs(container: string, refs: ReadonlyArray<{ task: string; token: number }>): Promise<Map<string, unknown>>;
  /** Inputs of the given tasks, by task name (a runner holds none in its picture); missing tasks are left out. */
  readInputs(container: string, tasks: readonly string[]): Promise<Map<string, unknown>>;
  /** Moves a task that is not running (skip, cancel, reset); false when the token is stale. */
  settleTask(container: string, task: string, expectedToken: number, outcome: SettleOutcome): Promise<boolean>;
}
