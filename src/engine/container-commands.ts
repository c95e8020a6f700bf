import { NotFoundError, ValidationError } from '../errors.js';
import type { TaskSnapshot, TaskStore } from '../store/types.js';
import { failFastReason, planStep, settlementOutcome } from './plan.js';

const RETRYABLE = new Set(['failed', 'skipped', 'cancelled']);

/**
 * Puts failed tasks back to pending, with the tasks skipped or cancelled
 * because of them, and reopens the container so runners pick them up.
 * With `task`, only that task and its dependents; otherwise every failed,
 * skipped or cancelled task. Returns the names reset.
 */
export async function retryTasks(store: TaskStore, container: string, task?: string): Promise<string[]> {
  const snapshot = await store.loadSnapshot(container);
  if (!snapshot) throw new NotFoundError('container', container);
  let targets = snapshot.tasks.filter((t) => RETRYABLE.has(t.state.status));
  if (task !== undefined) {
    const root = snapshot.tasks.find((t) => t.record.name === task);
    if (!root) throw new NotFoundError('task', task, `not in container "${container}"`);
    if (!RETRYABLE.has(root.state.status)) {
      throw new ValidationError(`Task "${task}" is ${root.state.status}; only failed, skipped or cancelled tasks can be retried`);
    }
    const chosen = casualtiesOf(task, snapshot.tasks);
    targets = targets.filter((t) => chosen.has(t.record.name));
  }
  const reset: string[] = [];
  for (const t of targets) {
    if (await store.settleTask(container, t.record.name, t.state.token, { kind: 'reset' })) reset.push(t.record.name);
  }
  if (reset.length > 0 || snapshot.container.cancelRequestedAt) await store.reopenContainer(container);
  return reset;
}

/**
 * Cancels a container: every runner aborts its attempts (they are recorded
 * as cancelled), pending tasks are cancelled at once, and the container ends
 * as cancelled once nothing runs. Returns false when it had already finished.
 */
export async function cancelContainer(store: TaskStore, container: string): Promise<boolean> {
  const before = await store.loadSnapshot(container);
  if (!before) throw new NotFoundError('container', container);
  if (before.container.status !== 'running') return false;
  // From here on the container reads as cancelled, whether a runner is alive or not.
  await store.requestCancel(container);
  const snapshot = await store.loadSnapshot(container);
  if (!snapshot) return true;
  const plan = planStep(snapshot, snapshot.container.failFast);
  for (const s of plan.settle) {
    await store.settleTask(container, s.task, s.token, settlementOutcome(s));
  }
  const after = await store.loadSnapshot(container);
  const final = after ? planStep(after, after.container.failFast) : null;
  if (final?.done && final.outcome) await store.finishContainer(container, final.outcome);
  return true;
}

/**
 * The task, its dependents, and every task its failure cancelled or skipped
 * (a fail-fast stop records the failed task as the cause), transitively.
 */
function casualtiesOf(task: string, tasks: readonly TaskSnapshot[]): Set<string> {
  const records = tasks.map((t) => t.record);
  const chosen = new Set<string>([task]);
  let grew = true;
  while (grew) {
    grew = false;
    const add = (name: string) => {
      if (chosen.has(name)) return;
      chosen.add(name);
      grew = true;
    };
    for (const name of [...chosen]) for (const d of dependentsOf(name, records)) add(d);
    for (const t of tasks) {
      if (!RETRYABLE.has(t.state.status) || chosen.has(t.record.name)) continue;
      const { cause, reason } = t.state;
      // Attempts stopped by a fail-fast record its reason, not a cause.
      if ((cause && chosen.has(cause.task)) || [...chosen].some((c) => reason === failFastReason(c))) add(t.record.name);
    }
  }
  return chosen;
}

function dependentsOf(name: string, records: ReadonlyArray<{ name: string; dependsOn: readonly string[] }>): Set<string> {
  const found = new Set<string>();
  const queue = [name];
  while (queue.length > 0) {
    const current = queue.pop()!;
    for (const r of records) {
      if (r.dependsOn.includes(current) && !found.has(r.name)) {
        found.add(r.name);
        queue.push(r.name);
      }
    }
  }
  return found;
}
