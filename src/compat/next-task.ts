import type { ContainerSnapshot, TaskSnapshot, TaskStore } from '../store/types.js';

/**
 * Tasks `getNextTask` may hand out, in declaration order: pending ones whose
 * dependencies all succeeded and whose retry time has come, and running ones
 * whose lease expired (their runner is gone). Nothing while the container is
 * being cancelled.
 */
export function nextTaskCandidates(snapshot: ContainerSnapshot): TaskSnapshot[] {
  if (snapshot.container.cancelRequestedAt) return [];
  const now = snapshot.readAt.getTime();
  const status = new Map(snapshot.tasks.map((t) => [t.record.name, t.state.status]));
  return snapshot.tasks.filter(({ record, state }) => {
    if (state.status === 'running') return state.leaseUntil === null || state.leaseUntil.getTime() <= now;
    if (state.status !== 'pending') return false;
    if (state.notBefore && state.notBefore.getTime() > now) return false;
    return record.dependsOn.every((d) => status.get(d) === 'succeeded');
  });
}

/**
 * Leases the first candidate nobody else claims first: each claim is appended
 * at the task's next log position, which only one writer can take, so
 * concurrent callers never get the same task. Returns the claimed task's
 * name, or null when every candidate was taken.
 */
export async function claimNextTask(
  store: TaskStore,
  snapshot: ContainerSnapshot,
  claim: { runnerId: string; leaseMs: number },
): Promise<string | null> {
  for (const { record, state } of nextTaskCandidates(snapshot)) {
    const won = await store.claimTask(snapshot.container.name, record.name, state.token, {
      runnerId: claim.runnerId,
      attempt: state.attempt + 1,
      leaseMs: claim.leaseMs,
      checkpoint: state.checkpoint,
    });
    if (won) return record.name;
  }
  return null;
}
