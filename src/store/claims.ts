/** Attempts and limits as the store writes them: claims, outcomes, edits, and the slots of limits shared by runners. */
import type { Transition } from './transition.js';
import type { PersistedError, TaskCause, TaskStatus } from './records.js';

/** What {@link TaskStore.claimTask} is asked: the position to take and the claim to write there. */
export interface ClaimRequest {
  container: string;
  task: string;
  /** The token the caller last saw for this task; the claim takes position `expectedToken + 1`. */
  expectedToken: number;
  claim: NewClaim;
  /** Called with the entry that holds the position when the claim lost it and the store read it back (outputs left out). */
  onTaken?: (entry: Transition) => void;
  /** The outcome this claim must never become visible before (a slot handed over). */
  after?: ClaimOrder;
}

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

/** Proof of an exclusive claim on one attempt of a task. */
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

/** Which attempt a stored trace context belongs to. */
export interface AttemptTraceKey {
  container: string;
  incarnation: string;
  task: string;
  attempt: number;
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
