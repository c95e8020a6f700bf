import type { Transition } from '../store/transition.js';
import type { AttemptOutcome, Claim, NewClaim, TaskState } from '../store/types.js';
import type { Settlement } from './plan.js';

/**
 * The log entries a runner just wrote, rebuilt locally so that it can move
 * its picture of the container forward without reading them back (the
 * store wrote the same fields at the same positions).
 */

/** The `claimed` entry of a claim the store granted. */
export function claimedEntry(claim: Claim, asked: NewClaim): Transition {
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

/** The entry an attempt's outcome wrote at the claim's next position. */
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
      return { ...base, kind: 'released' };
  }
}

/** The entry a settlement wrote. */
export function settlementEntry(container: string, s: Settlement, at: Date): Transition {
  const base = { container, task: s.task, token: s.token + 1, at };
  return s.kind === 'reset' ? { ...base, kind: 'reset', reason: null } : { ...base, kind: s.kind, reason: s.reason, cause: s.cause ?? null };
}

/**
 * A running state with the in-place fields of its claim entry read again
 * (heartbeat, progress, status text): the entry at the state's own position.
 */
export function refreshClaim(state: TaskState, entry: Transition): TaskState {
  if (state.status !== 'running' || entry.kind !== 'claimed' || entry.token !== state.token) return state;
  return {
    ...state,
    leaseUntil: entry.leaseUntil ?? null,
    progress: entry.progress ?? state.progress,
    progressAt: entry.progressAt ?? state.progressAt,
    statusText: entry.statusText ?? state.statusText,
    checkpointProgress: entry.checkpointProgress ?? state.checkpointProgress,
    checkpoint: entry.checkpoint ?? undefined,
  };
}
