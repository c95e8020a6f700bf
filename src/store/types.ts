import type { Transition } from './transition.js';
import type { AttemptOutcome, AttemptPatch, AttemptTraceKey, Claim, ClaimOrder, ClaimRequest, HeldSlots, SettleOutcome, SlotAcquisition, SlotHolder, SlotHolding, SlotId } from './claims.js';
import type { AppliedDefinition, ContainerHead, ContainerPage, ContainerPageQuery, ContainerRecord, ContainerSnapshot, ContainerStatus, NewContainer, NewTask, NewTasks, RetryIntent, SnapshotOptions, TaskRead, TaskRecord, TaskRecordsRead } from './records.js';

export * from './records.js';
export * from './claims.js';

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
  addTasks(container: string, tasks: NewTasks): Promise<string[]>;
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
  claimTask(request: ClaimRequest): Promise<Claim | null>;
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
