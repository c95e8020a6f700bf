import { assertSafeName } from '../definition/names.js';
import { DuplicateTaskError, NotFoundError } from '../errors.js';
import type { ContainerSnapshot, NewTask, TaskStore } from '../store/types.js';
import { syncContainerStatus } from './container-lifecycle.js';
import { findTask, loadContainer } from './context.js';
import { editTaskState } from './edit-state.js';
import { assertCompatDependencies, compatRecordPatch } from './task-record.js';
import { parseTaskValues } from './values.js';

/**
 * `updateTask`: validates everything first; then updates the task record
 * (renaming it, and the dependencies that point at it, when `values.name`
 * differs) and writes the state fields as one `edited` transition. Returns
 * the task's (possibly new) name and the container as read afterwards.
 */
export async function updateCompatTask(
  store: TaskStore,
  container: string,
  name: unknown,
  values: unknown,
): Promise<{ name: string; snapshot: ContainerSnapshot }> {
  assertSafeName('task', name);
  const parsed = parseTaskValues(values);
  const before = await loadContainer(store, container);
  const current = findTask(before, name);
  if (!current) throw new NotFoundError('task', name, `not in container "${container}"`);
  const patch = compatRecordPatch(current.record, parsed.record);
  const finalName = patch.name ?? name;
  if (patch.name !== undefined && findTask(before, patch.name)) throw new DuplicateTaskError(patch.name, container);
  const others = before.tasks
    .filter((t) => t.record.name !== name)
    .map((t) => ({ name: t.record.name, dependsOn: t.record.dependsOn.map((d) => (d === name ? finalName : d)) }));
  if (patch.dependsOn !== undefined) assertCompatDependencies({ name: finalName, dependsOn: patch.dependsOn }, others);

  const changesRecord = Object.keys(patch).length > 0;
  if (changesRecord) await writeRecordPatch(store, container, name, patch);
  if (patch.name !== undefined) {
    for (const t of before.tasks) {
      if (t.record.name !== name && t.record.dependsOn.includes(name)) {
        const dependsOn = t.record.dependsOn.map((d) => (d === name ? finalName : d));
        await store.updateTaskRecord(container, t.record.name, { dependsOn });
      }
    }
  }
  if (parsed.hasState) {
    await editTaskState(store, container, finalName, parsed.state, changesRecord ? undefined : current.state);
  }
  return { name: finalName, snapshot: await syncContainerStatus(store, await loadContainer(store, container)) };
}

async function writeRecordPatch(store: TaskStore, container: string, name: string, patch: Partial<NewTask>): Promise<void> {
  let found: boolean;
  try {
    found = await store.updateTaskRecord(container, name, patch);
  } catch (error) {
    // A rename that lost a race for the new name.
    if (patch.name !== undefined) {
      const after = await store.loadSnapshot(container);
      if (after && findTask(after, patch.name) && findTask(after, name)) throw new DuplicateTaskError(patch.name, container);
    }
    throw error;
  }
  if (!found) throw new NotFoundError('task', name, `not in container "${container}" (deleted meanwhile)`);
}
