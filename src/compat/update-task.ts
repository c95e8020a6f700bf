import { assertSafeName } from '../definition/names.js';
import { CycleError, DuplicateTaskError, NotFoundError, UnknownDependencyError } from '../errors.js';
import type { NewTask, TaskRecord, TaskStore } from '../store/types.js';
import { loadContainer } from './context.js';
import { editTaskState } from './edit-state.js';
import { readBack, readTask, type CompatRead } from './task-reads.js';
import { assertCompatDependencies, compatRecordPatch } from './task-record.js';
import { parseTaskValues } from './values.js';

/**
 * `updateTask`: validates everything first; then updates the task record
 * (renaming it, and the dependencies that point at it, when `values.name`
 * differs) and writes the state fields as one `edited` transition. Returns
 * the task as read afterwards, under its (possibly new) name. Reads only the
 * task, the names it is renamed to or made to depend on, and (on a rename or
 * a change of `dependsOn`) its dependents: a fixed number of commands
 * whatever the container's size, except that new dependencies of a task that
 * others depend on are checked for a cycle against the whole container.
 * Throws {@link NotFoundError} (container or task missing),
 * {@link DuplicateTaskError} (renamed to a name in use),
 * {@link UnknownDependencyError} or {@link CycleError}.
 */
export async function updateCompatTask(store: TaskStore, container: string, name: unknown, values: unknown): Promise<CompatRead> {
  assertSafeName('task', name);
  const parsed = parseTaskValues(values);
  const current = (await readTask(store, container, name)).task;
  if (!current) throw new NotFoundError('task', name, `not in container "${container}"`);
  const patch = compatRecordPatch(current.record, parsed.record);
  const finalName = patch.name ?? name;
  const dependsOn = patch.dependsOn ?? [];
  const asked = [...(patch.name === undefined ? [] : [patch.name]), ...dependsOn];
  const named = asked.length > 0 ? await store.loadTaskRecords(container, asked) : { records: [] };
  if (!named) throw new NotFoundError('container', container, 'it was deleted while the task was being updated');
  const existing = new Set(named.records.map((r) => r.name).filter((n) => n !== name));
  if (patch.name !== undefined && existing.has(patch.name)) throw new DuplicateTaskError(patch.name, container);
  const dependents = patch.name !== undefined || dependsOn.length > 0 ? await store.loadDependents(container, name) : [];
  if (patch.dependsOn !== undefined) {
    for (const dep of patch.dependsOn) {
      if (dep === finalName) throw new CycleError([finalName, finalName]);
      if (!existing.has(dep)) throw new UnknownDependencyError(finalName, dep);
    }
    // Only a task others depend on (by its name, or by the new one when a
    // dependency was left pointing at it) can close a cycle through its new dependencies.
    const dependedOn = async () =>
      dependents.length > 0 || (patch.name !== undefined && (await store.loadDependents(container, patch.name)).length > 0);
    if (dependsOn.length > 0 && (await dependedOn())) await assertNoCycle(store, container, name, finalName, dependsOn);
  }

  const changesRecord = Object.keys(patch).length > 0;
  if (changesRecord) await writeRecordPatch(store, container, name, patch);
  if (patch.name !== undefined) await renameDependencies(store, container, dependents, name, finalName);
  if (parsed.hasState) {
    await editTaskState(store, container, finalName, parsed.state, changesRecord ? undefined : current.state);
  }
  return readBack(store, container, finalName, patch.name === undefined ? undefined : name);
}

/** Checks the changed task's dependencies against every task of the container (their own renamed too). */
async function assertNoCycle(store: TaskStore, container: string, name: string, finalName: string, dependsOn: string[]): Promise<void> {
  const all = await loadContainer(store, container);
  const others = all.tasks
    .filter((t) => t.record.name !== name)
    .map((t) => ({ name: t.record.name, dependsOn: t.record.dependsOn.map((d) => (d === name ? finalName : d)) }));
  assertCompatDependencies({ name: finalName, dependsOn }, others);
}

/** Points the dependencies of the renamed task's dependents at its new name, in declaration order. */
async function renameDependencies(store: TaskStore, container: string, dependents: TaskRecord[], from: string, to: string): Promise<void> {
  for (const t of dependents) {
    if (t.name !== from && t.dependsOn.includes(from)) {
      await store.updateTaskRecord(container, t.name, { dependsOn: t.dependsOn.map((d) => (d === from ? to : d)) });
    }
  }
}

async function writeRecordPatch(store: TaskStore, container: string, name: string, patch: Partial<NewTask>): Promise<void> {
  let found: boolean;
  try {
    found = await store.updateTaskRecord(container, name, patch);
  } catch (error) {
    // A rename that lost a race for the new name.
    if (patch.name !== undefined) {
      const after = await store.loadTaskRecords(container, [patch.name, name]);
      if (after && after.records.length === 2) throw new DuplicateTaskError(patch.name, container);
    }
    throw error;
  }
  if (!found) throw new NotFoundError('task', name, `not in container "${container}" (deleted meanwhile)`);
}
