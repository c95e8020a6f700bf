import { planStep } from '../engine/plan.js';
import type { ContainerSnapshot, TaskStore } from '../store/types.js';

/**
 * Leases the first candidate nobody else claims first: each claim is appended
 * at the task's next log position, which only one writer can take, so
 * concurrent callers never get the same task. Returns the claimed task's
 * name, or null when every candidate was taken. `only` restricts it to one task.
 */
export async function claimNextTask(
  store: TaskStore,
  snapshot: ContainerSnapshot,
  claim: { runnerId: string; leaseMs: number },
  only?: string,
): Promise<string | null> {
  // The same readiness rules as the engine's runners: pending with every
  // dependency succeeded and the retry time come, or running with an expired
  // lease; nothing while the container is being cancelled.
  const { ready } = planStep(snapshot, snapshot.container.failFast);
  for (const { snapshot: { record, state } } of ready) {
    if (only !== undefined && record.name !== only) continue;
    const won = await store.claimTask({
      container: snapshot.container.name,
      task: record.name,
      expectedToken: state.token,
      claim: { runnerId: claim.runnerId, attempt: state.attempt + 1, leaseMs: claim.leaseMs, checkpoint: state.checkpoint },
    });
    if (won) return record.name;
  }
  return null;
}
