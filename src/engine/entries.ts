import type { Transition } from '../store/transition.js';
import type { TaskState } from '../store/types.js';
import type { Settlement } from './plan.js';

/**
 * The log entries a runner just wrote, rebuilt locally so that it can move
 * its picture of the container forward without reading them back (the
 * store wrote the same fields at the same positions). Claims and outcomes
 * use the very builders the store appends with (`claimedEntry`,
 * `outcomeEntry` in `src/store/transition.ts`).
 */

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
    leaseRenewedAt: entry.leaseRenewedAt ?? null,
    heartbeats: entry.heartbeats ?? 0,
    progress: entry.progress ?? state.progress,
    progressAt: entry.progressAt ?? state.progressAt,
    statusText: entry.statusText ?? state.statusText,
    checkpointProgress: entry.checkpointProgress ?? state.checkpointProgress,
    checkpoint: entry.checkpoint ?? undefined,
  };
}
