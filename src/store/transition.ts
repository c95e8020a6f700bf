import type { AttemptOutcome, Claim, NewClaim, PersistedError, TaskCause, TaskEdit } from './types.js';

/** Kinds of entries in a task's transition log. */
export type TransitionKind = 'claimed' | 'succeeded' | 'failed' | 'released' | 'cancelled' | 'skipped' | 'reset' | 'edited';

/**
 * One entry of a task's append-only transition log. `token` is its position;
 * a unique key on (container, task, token) makes each position exclusive.
 * Only a `claimed` entry is updated after insertion (lease, progress,
 * checkpoint), and only by the attempt that owns it.
 */
export interface Transition {
  container: string;
  /** The container's incarnation (absent for containers made before incarnations existed). */
  incarnation?: string;
  task: string;
  token: number;
  kind: TransitionKind;
  at: Date;
  runnerId?: string | null;
  attempt?: number;
  leaseUntil?: Date | null;
  progress?: number;
  statusText?: string;
  checkpoint?: unknown;
  /** For `claimed` entries: the progress the attempt started from (that of the checkpoint it resumed). */
  startProgress?: number;
  /** For `claimed` entries: when `progress` was last written. */
  progressAt?: Date | null;
  /** For `claimed` entries: the progress reported when `checkpoint` was written. */
  checkpointProgress?: number;
  /** For `claimed` entries: the holder's lease length (ms); `leaseUntil - leaseMs` is its last heartbeat. */
  leaseMs?: number | null;
  /** For `claimed` entries: the holder's heartbeat interval (ms), or null when it sends none. */
  heartbeatMs?: number | null;
  /**
   * For `claimed` entries: the database server's time of the claim's latest
   * lease renewal (`$currentDate`, set right after the claim and by every
   * heartbeat). Readers judge liveness on the server's clock with it; absent
   * in entries of older versions and until the first stamp lands.
   */
  leaseRenewedAt?: Date | null;
  /**
   * For `claimed` entries: lease renewals (heartbeats) the holder wrote so
   * far, counted by the server (`$inc`). Part of the lease's identity a
   * reader observes, so no writer's clock decides whether a lease moved.
   * Absent in entries of older versions and before the first heartbeat.
   */
  heartbeats?: number;
  output?: unknown;
  error?: PersistedError | null;
  retryAt?: Date | null;
  reason?: string | null;
  /**
   * Random per write: an append repeated after a lost reply reads its position
   * back and recognises its own entry by it. Absent in entries of older versions.
   */
  nonce?: string;
  /**
   * For a `claimed` entry written behind another attempt's outcome (a slot
   * handover, see ClaimOrder): that outcome's `_id`. It was stored before or
   * with this entry, so a reader that meets this claim and not that outcome
   * read the other task's log too early, and reads it again.
   */
  behind?: string;
  /**
   * For `skipped` and `cancelled` entries: the task (and its log position)
   * whose state decided it; a skip is undone once that task moves on.
   * Position -1: the task did not exist.
   */
  cause?: TaskCause | null;
  /** For `edited` entries: the fields set by hand. */
  set?: TaskEdit;
}

/**
 * The `claimed` entry of a claim: what the store appends (with its nonce,
 * incarnation and server stamp) and what a runner folds once it is granted.
 */
export function claimedEntry(claim: Claim, asked: Pick<NewClaim, 'checkpoint' | 'leaseMs' | 'heartbeatMs'>): Transition {
  const progress = claim.progress;
  return {
    container: claim.container,
    task: claim.task,
    token: claim.token,
    kind: 'claimed',
    at: claim.claimedAt,
    runnerId: claim.runnerId,
    attempt: claim.attempt,
    leaseUntil: claim.leaseUntil,
    progress,
    startProgress: progress,
    checkpointProgress: progress,
    statusText: '',
    checkpoint: asked.checkpoint ?? null,
    leaseMs: asked.leaseMs,
    heartbeatMs: asked.heartbeatMs ?? null,
  };
}

/** The entry of an attempt's outcome, at the claim's next position (without nonce and incarnation). */
export function outcomeEntry(claim: Claim, outcome: AttemptOutcome, at: Date): Transition {
  const base = { container: claim.container, task: claim.task, token: claim.token + 1, at };
  switch (outcome.kind) {
    case 'succeeded':
      return { ...base, kind: 'succeeded', output: outcome.output ?? null };
    case 'failed':
      return { ...base, kind: 'failed', error: outcome.error, retryAt: outcome.retryAt };
    case 'cancelled':
      return { ...base, kind: 'cancelled', reason: outcome.reason };
    case 'released':
      return outcome.lapsed ? { ...base, kind: 'released', reason: outcome.lapsed } : { ...base, kind: 'released' };
  }
}
