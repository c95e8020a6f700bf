import { diffDefinitions } from '../definition/compare.js';
import type { ContainerDefinition } from '../definition/types.js';
import { DefinitionConflictError, NotFoundError } from '../errors.js';
import type { TaskStore } from '../store/types.js';

/**
 * Creates the container of a definition, or checks a persisted one against
 * it. Declared tasks missing from the store (a crash right after creation)
 * are added. Without a definition the container must already exist.
 */
export async function ensureContainer(
  store: TaskStore,
  name: string,
  definition: ContainerDefinition | null,
): Promise<{ resumed: boolean }> {
  if (!definition) {
    if (!(await store.getContainer(name))) throw new NotFoundError('container', name);
    return { resumed: true };
  }
  const declared = definition.tasks.map((t) => ({ name: t.name, dependsOn: [...t.dependsOn] }));
  const { record, created } = await store.createContainer({
    name,
    failFast: definition.failFast,
    definition: declared,
  });
  const snapshot = await store.loadSnapshot(name);
  const existing = new Map((snapshot?.tasks ?? []).map((t) => [t.record.name, t.record]));
  if (!created) {
    // A container made through the 0.0.1 API has no declared graph: compare
    // the declared tasks it already holds instead.
    let differences: string[];
    if (record.definition) {
      differences = diffDefinitions(record.definition, declared);
    } else {
      const shared = declared.filter((d) => existing.has(d.name));
      const persisted = shared.map((d) => ({ name: d.name, dependsOn: existing.get(d.name)!.dependsOn }));
      differences = diffDefinitions(persisted, shared);
    }
    if (differences.length > 0) throw new DefinitionConflictError(name, differences);
  }
  const missing = definition.tasks.filter((t) => !existing.has(t.name));
  if (missing.length > 0) {
    await store.addTasks(
      name,
      missing.map((t) => ({
        name: t.name,
        dependsOn: [...t.dependsOn],
        handler: t.handlerName,
        input: t.input,
        options: t.options,
        dynamic: false,
        addedBy: null,
      })),
    );
  }
  return { resumed: !created };
}
