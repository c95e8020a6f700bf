import { NotFoundError, ValidationError } from '../errors.js';
import type { TaskStore } from '../store/types.js';
import { planStep } from './plan.js';

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
    const downstream = dependentsOf(task, snapshot.tasks.map((t) => t.record));
    targets = targets.filter((t) => t.record.name === task || downstream.has(t.record.name));
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
  const record = await store.getContainer(container);
  if (!record) throw new NotFoundError('container', container);
  if (record.status !== 'running') return false;
  await store.requestCancel(container);
  const snapshot = await store.loadSnapshot(container);
  if (!snapshot) return true;
  const plan = planStep(snapshot, snapshot.container.failFast);
  for (const s of plan.settle) {
    await store.settleTask(container, s.task, s.token, { kind: s.kind, reason: s.reason });
  }
  const after = await store.loadSnapshot(container);
  const final = after ? planStep(after, after.container.failFast) : null;
  if (final?.done && final.outcome) await store.finishContainer(container, final.outcome);
  return true;
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
