/** Containers and tasks as the store keeps and reads them: records, derived states, snapshots, pages. */
import type { ResolvedTaskOptions } from '../definition/options.js';

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
 * Tasks to add, read by index and made when asked, so that a large list
 * (a million declared tasks) is never held as one object per task. An array
 * is one. `distinct`: the names are known to be distinct (a definition's,
 * checked when it was built), so they are not checked again.
 */
export interface NewTasks {
  readonly length: number;
  at(index: number): NewTask | undefined;
  readonly distinct?: boolean;
}

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

/** A container to create. */
export interface NewContainer {
  name: string;
  failFast: boolean;
  definition: ContainerRecord['definition'];
}
