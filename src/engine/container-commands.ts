import { randomBytes } from 'node:crypto';
import { NotFoundError, ValidationError } from '../errors.js';
import type { RetryIntent, TaskSnapshot, TaskStore } from '../store/types.js';
import { failFastReason, planStep, settlementOutcome } from './plan.js';

const RETRYABLE = new Set(['failed', 'skipped', 'cancelled']);

/**
 * Puts failed tasks back to pending, with the tasks skipped or cancelled
 * because of them, and reopens the container so runners pick them up.
 * With `task`, only that task and its dependents; otherwise every failed,
 * skipped or cancelled task. Returns the names reset.
 *
 * Write order (docs/correctness.md): the resets are first recorded on the
 * container as a {@link RetryIntent} (moving its revision on), then written
 * one by one, then the intent is cleared as the container is reopened. A
 * cut anywhere leaves the intent, which the next reader finishes: a runner
 * at its next poll, or this command called again (a retry cut off half-way
 * is finished first, and its resets are part of what it returns).
 * @throws NotFoundError when the container (or `task`) does not exist
 * @throws ValidationError when `task` is not failed, skipped or cancelled
 */
export async function retryTasks(store: TaskStore, container: string, task?: string): Promise<string[]> {
  let snapshot = await store.loadSnapshot(container);
  if (!snapshot) throw new NotFoundError('container', container);
  const finished: string[] = [];
  if (snapshot.container.retry) {
    finished.push(...(await completeRetry(store, container, snapshot.container.retry)));
    snapshot = await store.loadSnapshot(container);
    if (!snapshot) throw new NotFoundError('container', container);
  }
  let targets = snapshot.tasks.filter((t) => RETRYABLE.has(t.state.status));
  if (task !== undefined) {
    const root = snapshot.tasks.find((t) => t.record.name === task);
    if (!root) throw new NotFoundError('task', task, `not in container "${container}"`);
    if (!RETRYABLE.has(root.state.status)) {
      if (finished.includes(task)) return finished;
      throw new ValidationError(`Task "${task}" is ${root.state.status}; only failed, skipped or cancelled tasks can be retried`);
    }
    const chosen = casualtiesOf(task, snapshot.tasks);
    targets = targets.filter((t) => chosen.has(t.record.name));
  }
  if (targets.length === 0 && !snapshot.container.cancelRequestedAt) return finished;
  const intent: RetryIntent = {
    id: randomBytes(8).toString('hex'),
    tasks: targets.map((t) => ({ task: t.record.name, token: t.state.token })),
  };
  if (!(await store.beginRetry(container, intent))) throw new NotFoundError('container', container);
  const reset = await completeRetry(store, container, intent);
  return [...finished, ...reset.filter((name) => !finished.includes(name))];
}

/**
 * Finishes a retry recorded on the container (begun by {@link retryTasks} in
 * this process or in one that died half-way): writes each reset at the
 * position after the one recorded, then ends the retry. Idempotent, and
 * safe to run by several readers at once: each position is taken once, and
 * a reset found at it counts as done. Returns the names whose reset is in
 * the log.
 */
export async function completeRetry(store: TaskStore, container: string, intent: RetryIntent): Promise<string[]> {
  const reset: string[] = [];
  for (const { task, token } of intent.tasks) {
    if (await store.settleTask(container, task, token, { kind: 'reset' })) reset.push(task);
    else if ((await store.readLog(container, task, token + 1, 1))[0]?.kind === 'reset') reset.push(task);
  }
  await store.endRetry(container, intent.id);
  return reset;
}

/**
 * Cancels a container: every runner aborts its attempts (they are recorded
 * as cancelled), pending tasks are cancelled at once, and the container ends
 * as cancelled once nothing runs. Returns false when it had already finished
 * (a cancel already requested counts as finished).
 *
 * Write order (docs/correctness.md): the cancel request on the container
 * first (from then on it reads as cancelled), then the tasks that nothing
 * runs, then the status hint. A cut after the request is finished by any
 * runner of the container, or by this command called again: it cancels what
 * is still pending, and the tasks whose runner is gone (lease expired).
 */
export async function cancelContainer(store: TaskStore, container: string): Promise<boolean> {
  const before = await store.loadSnapshot(container);
  if (!before) throw new NotFoundError('container', container);
  const already = before.container.cancelRequestedAt !== null;
  if (before.container.status !== 'running' && !already) return false;
  // From here on the container reads as cancelled, whether a runner is alive or not.
  if (!already) await store.requestCancel(container);
  const snapshot = already ? before : await store.loadSnapshot(container);
  if (!snapshot) return !already;
  const plan = planStep(snapshot, snapshot.container.failFast);
  for (const s of plan.settle) {
    await store.settleTask(container, s.task, s.token, settlementOutcome(s));
  }
  const after = await store.loadSnapshot(container);
  const final = after ? planStep(after, after.container.failFast) : null;
  if (final?.done && final.outcome) await store.finishContainer(container, final.outcome);
  return !already;
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
