import { deriveContainerState } from '../store/container-state.js';
import { foldTransitions } from '../store/fold.js';
import { lostRunner } from '../store/lease-health.js';
import type { ContainerSnapshot, TaskSnapshot, TaskState } from '../store/types.js';

/** The reason shown for a task of a cancelled container that nothing will run or end any more. */
export const CANCELLED_LEFTOVER_REASON = 'container cancelled';

/**
 * What a status read shows of commands recorded on a container but not
 * finished in its tasks' logs (see docs/correctness.md), as the next runner
 * or the same command repeated will write them:
 * - a retry recorded on the container (`container.retry`) whose process died half-way:
 *   each task not reset yet shows as reset (pending), and the container as
 *   reopened;
 * - a cancelled container: a pending task shows as cancelled, and so does a
 *   running task whose runner is gone (its lease expired, judged on the
 *   server's clock when `serverNow` is given; see {@link lostRunner}), which
 *   would otherwise read `running` for ever once nobody runs the container.
 * Nothing is written: the tasks' logs stay the truth, and the snapshot
 * returned is a new one (the one given is not changed).
 */
export function showUnfinishedCommands(snapshot: ContainerSnapshot, serverNow: Date | null = null): ContainerSnapshot {
  const { container } = snapshot;
  const retry = container.retry;
  if (!retry && !container.cancelRequestedAt) return snapshot;
  const at = snapshot.readAt;
  let tasks: TaskSnapshot[];
  let shownContainer = container;
  if (retry) {
    const resets = new Map(retry.tasks.map((r) => [r.task, r.token]));
    tasks = snapshot.tasks.map((t) => {
      if (resets.get(t.record.name) !== t.state.token) return t;
      const state = foldTransitions([{ container: container.name, task: t.record.name, token: t.state.token + 1, kind: 'reset', at }], t.state);
      return { ...t, state };
    });
    shownContainer = { ...container, cancelRequestedAt: null };
  } else {
    tasks = snapshot.tasks.map((t) => (isLeftOver(t.state, at, serverNow) ? { ...t, state: cancelledLeftover(t, at) } : t));
  }
  const derived = deriveContainerState(shownContainer, tasks);
  return { ...snapshot, tasks, container: { ...shownContainer, status: derived.status, finishedAt: derived.finishedAt } };
}

/** A task of a cancelled container that nothing will run or end: pending, or running under an expired lease. */
function isLeftOver(state: TaskState, now: Date, serverNow: Date | null): boolean {
  if (state.status === 'pending') return true;
  return state.status === 'running' && lostRunner(state, now, serverNow)?.expired === true;
}

function cancelledLeftover(t: TaskSnapshot, at: Date): TaskState {
  const entry = { container: '', task: t.record.name, token: t.state.token + 1, kind: 'cancelled' as const, at, reason: CANCELLED_LEFTOVER_REASON };
  return foldTransitions([entry], t.state);
}
