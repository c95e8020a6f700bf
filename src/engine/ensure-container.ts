import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { diffDefinitions } from '../definition/compare.js';
import { EARLY_START_MIN_TASKS } from './early-start.js';
import { declaredRecords, definitionFingerprint, graphFingerprint, stableJson } from '../definition/fingerprint.js';
import type { ContainerDefinition } from '../definition/types.js';
import { DefinitionConflictError, NotFoundError } from '../errors.js';
import type { ContainerHead, ContainerRecord, ContainerSnapshot, NewTask, NewTasks, TaskRecord, TaskSnapshot, TaskStore } from '../store/types.js';
import type { FreshTasks } from './view.js';

/** Declared tasks compared with their stored records between two yields to the event loop. */
const COMPARE_CHUNK = 2000;

/** What {@link ensureContainer} did. */
export interface EnsuredContainer {
  resumed: boolean;
  /**
   * The container as it stands once ensured (outputs not read), so the
   * runner's first step needs no read of its own.
   */
  snapshot: ContainerSnapshot;
  /** Tasks this call inserted into the container it created, pending (not in `snapshot.tasks`). */
  fresh?: FreshTasks;
  /** Option, input, handler or failFast changes applied to the persisted container, one sentence each. */
  changes: string[];
  /**
   * Set when the runner may start tasks before its first full read landed:
   * `snapshot` then holds the container document and no task, `full` is
   * that read (begun at monotonic `readStartedAt`, ms), and `records` the
   * container's task records (the definition's, known applied).
   */
  early?: { full: Promise<ContainerSnapshot | null>; readStartedAt: number; records: TaskRecord[] };
}

/**
 * Creates the container of a definition, or checks a persisted one against
 * it. Declared tasks missing from the store (a crash right after creation)
 * are added. Changed options, inputs and handlers are applied to the tasks
 * that are not running, and reported in `changes`; a change to a running task
 * throws {@link DefinitionConflictError} (never silently ignored). Without a
 * definition the container must already exist.
 */
export async function ensureContainer(
  store: TaskStore,
  name: string,
  definition: ContainerDefinition | null,
): Promise<EnsuredContainer> {
  if (!definition) {
    const snapshot = await store.loadSnapshot(name, { outputs: false, parallel: true });
    if (!snapshot) throw new NotFoundError('container', name);
    return { resumed: true, changes: [], snapshot };
  }
  // The definition's own (frozen) tasks stand for its graph (names and
  // dependencies), not copies: a large definition is not held twice.
  const declared = definition.tasks;
  let fingerprint = definition.tasks.length >= EARLY_START_MIN_TASKS ? await definitionFingerprint(definition) : null;
  if (fingerprint !== null) {
    // A container that holds exactly this definition needs neither checks of
    // its inputs (stored already) nor the create call (it reads the whole
    // container document, declared graph included): one read of its head.
    const head = await store.readContainerHead(name);
    if (head && mayStartEarly(head, definition, fingerprint)) {
      const readStartedAt = performance.now();
      // One array for the early start and the full read: a large container's records are not made twice.
      const records = declaredRecords(definition, head.record.createdAt);
      const full = store.loadSnapshot(name, {
        outputs: false,
        parallel: true,
        declared: { fingerprint, graph: declared, records: () => records },
      });
      // Awaited by the runner; a failure is met there (this only keeps it from counting as unhandled meanwhile).
      full.catch(() => undefined);
      const container = { ...head.record, definition: declared };
      const snapshot: ContainerSnapshot = { container, tasks: [], readAt: new Date(), revision: head.revision, hiddenStaged: [], applied: head.applied };
      return { resumed: true, changes: [], snapshot, early: { full, readStartedAt, records } };
    }
  }
  // Inputs the server cannot store are refused before anything is written.
  await store.assertStorableInputs?.(definition.tasks);
  // The declared names are recorded with the container, before any task: a
  // container whose tasks are not all present is never finished.
  const { record, created } = await store.createContainer({
    name,
    failFast: definition.failFast,
    definition: declared,
  });
  fingerprint ??= await definitionFingerprint(definition);
  // A stored graph with this fingerprint is this one: it is not read back.
  const graph = await graphFingerprint(declared);
  let snapshot = await store.loadSnapshot(name, {
    outputs: false,
    parallel: true,
    declared: { fingerprint, graph: declared, graphFingerprint: graph, records: () => declaredRecords(definition, record.createdAt) },
  });
  // This very definition was applied and nothing changed the tasks since:
  // there is nothing to compare (the task documents may not even have been read).
  if (!created && snapshot && isApplied(snapshot, fingerprint)) return { resumed: true, changes: [], snapshot };
  const existing = new Map((snapshot?.tasks ?? []).map((t) => [t.record.name, t]));
  let changes: string[] = [];
  if (!created) {
    // A container made through the 0.0.1 API has no declared graph: compare
    // the declared tasks it already holds instead.
    let differences: string[];
    const persisted = snapshot?.container.definition ?? null;
    if (persisted === declared) {
      // The stored graph has this graph's fingerprint (see SnapshotOptions.declared).
      differences = [];
    } else if (persisted) {
      differences = diffDefinitions(persisted, declared);
    } else {
      const shared = declared.filter((d) => existing.has(d.name));
      const stored = shared.map((d) => ({ name: d.name, dependsOn: existing.get(d.name)!.record.dependsOn }));
      differences = diffDefinitions(stored, shared);
    }
    if (differences.length > 0) throw new DefinitionConflictError(name, differences);
    changes = await applyOptionChanges(store, record, definition, existing);
  }
  // The declared tasks not stored yet: every one when this call created the container (no copy of the list).
  const missing = existing.size === 0 ? definition.tasks : definition.tasks.filter((t) => !existing.has(t.name));
  // Their records are made when read, one at a time, never held as a list:
  // a million-task create holds only the definition it was given.
  const newTasks: NewTasks = { length: missing.length, at: (i) => (i < missing.length ? newTaskOf(missing.at(i)!) : undefined), distinct: true };
  const added = newTasks.length > 0 ? await store.addTasks(name, newTasks) : [];
  let fresh: FreshTasks | undefined;
  // The stored records were compared equal to the definition's (or made from it by this call).
  let compared = !created && changes.length === 0 && newTasks.length === 0;
  if (snapshot && created && existing.size === 0 && added.length === newTasks.length) {
    compared = true;
    // A container this call created, with every task inserted by it: nothing
    // else can have happened to them yet, so they are known without reading.
    // Inserting them moved the revision on by one (see ContainerHead.revision);
    // any other change since moved it further, and is seen at the first check.
    fresh = { tasks: newTasks, createdAt: new Date() };
    snapshot = { ...snapshot, revision: (snapshot.revision ?? 0) + (newTasks.length > 0 ? 1 : 0) };
  } else if (!snapshot || newTasks.length > 0 || changes.length > 0) {
    snapshot = await store.loadSnapshot(name, { outputs: false, parallel: true });
  }
  if (!snapshot) throw new NotFoundError('container', name, 'it was deleted while being created');
  if (!created && !fresh && !isApplied(snapshot, fingerprint)) {
    // A runner creating the container at the same moment may have inserted
    // its tasks and not yet moved the revision on for them: this picture
    // would be read again in full at the first poll, in the middle of the
    // run (in 7 of 7 bench runs of four runners started together, one read
    // everything at its first poll, delaying its next claims 100-300 ms).
    // One read by `_id` checks it now, before the run.
    const head = await store.readContainerHead(name);
    if (head && head.revision !== snapshot.revision) {
      // Changed since it was compared: not recorded applied from this picture.
      compared = false;
      snapshot = await store.loadSnapshot(name, { outputs: false, parallel: true });
      if (!snapshot) throw new NotFoundError('container', name, 'it was deleted while being created');
    }
  }
  if (store.recordApplied && compared && !isApplied(snapshot, fingerprint) && holdsExactly(snapshot, definition, fresh)) {
    // The next runner's start can trust the definition for the task records.
    const quiet = snapshot.tasks.every((t) => t.state.status !== 'running' && t.state.status !== 'failed');
    const applied = { fingerprint, revision: snapshot.revision ?? 0, quiet };
    await store.recordApplied(name, applied);
    snapshot = { ...snapshot, applied };
  }
  return { resumed: !created, changes, snapshot, fresh };
}

/** The record of a declared task as it is added. */
function newTaskOf(t: ContainerDefinition['tasks'][number]): NewTask {
  return { name: t.name, dependsOn: t.dependsOn as string[], handler: t.handlerName, input: t.input, options: t.options, dynamic: false, addedBy: null };
}

/**
 * A runner may start tasks before its first full read has landed (see
 * `EarlyStart`; containers of at least `EARLY_START_MIN_TASKS`): the container holds exactly this definition's tasks
 * (recorded applied, revision unchanged since), is neither cancelled nor
 * being retried, and, when it fails fast, no task had failed for good
 * (recorded quiet: none has since either, or the revision would have moved).
 */
function mayStartEarly(head: ContainerHead, definition: ContainerDefinition, fingerprint: string): boolean {
  const applied = head.applied;
  if (!applied || applied.fingerprint !== fingerprint || applied.revision !== head.revision) return false;
  if (head.record.cancelRequestedAt !== null || head.record.retry) return false;
  return applied.quiet || !definition.failFast;
}

/** The snapshot's container has `fingerprint` applied, and its revision has not moved since. */
function isApplied(snapshot: ContainerSnapshot, fingerprint: string): boolean {
  return snapshot.applied?.fingerprint === fingerprint && snapshot.applied.revision === (snapshot.revision ?? 0);
}

/**
 * The snapshot holds the definition's tasks and no other (none dynamic, none
 * staged), in its order: with records compared equal to the definition's,
 * what recording it applied claims.
 */
function holdsExactly(snapshot: ContainerSnapshot, definition: ContainerDefinition, fresh: FreshTasks | undefined): boolean {
  if (snapshot.revision === undefined || (snapshot.hiddenStaged?.length ?? 0) > 0) return false;
  // Made by this call from the definition, every task, in its order.
  if (fresh) return snapshot.tasks.length === 0 && fresh.tasks.length === definition.tasks.length;
  if (snapshot.tasks.length !== definition.tasks.length) return false;
  for (const [i, t] of definition.tasks.entries()) {
    const r = snapshot.tasks[i]?.record;
    if (!r || r.dynamic || r.name !== t.name || r.handler !== t.handlerName) return false;
    if (r.dependsOn.length !== t.dependsOn.length || r.dependsOn.some((d, j) => d !== t.dependsOn[j])) return false;
  }
  return true;
}

/** Applies changed options, inputs, handlers and failFast to what is not running; throws for a running task. */
async function applyOptionChanges(
  store: TaskStore,
  record: ContainerRecord,
  definition: ContainerDefinition,
  existing: ReadonlyMap<string, TaskSnapshot>,
): Promise<string[]> {
  const changes: string[] = [];
  const conflicts: string[] = [];
  const updates: Array<{ task: string; patch: Partial<NewTask> }> = [];
  for (const [i, t] of definition.tasks.entries()) {
    // A large definition is compared in chunks, the event loop let through in between.
    if (i > 0 && i % COMPARE_CHUNK === 0) await yieldToLoop();
    const current = existing.get(t.name);
    if (!current || current.record.dynamic) continue;
    const changed: string[] = [];
    const patch: Partial<NewTask> = {};
    if (stableJson(current.record.options) !== stableJson(t.options)) {
      changed.push(`options ${stableJson(current.record.options)} -> ${stableJson(t.options)}`);
      patch.options = t.options;
    }
    if (stableJson(current.record.input ?? null) !== stableJson(t.input ?? null)) {
      changed.push('input');
      patch.input = t.input ?? null;
    }
    if (current.record.handler !== t.handlerName) {
      changed.push(`handler "${current.record.handler}" -> "${t.handlerName}"`);
      patch.handler = t.handlerName;
    }
    if (changed.length === 0) continue;
    const sentence = `task "${t.name}": ${changed.join('; ')}`;
    if (current.state.status === 'running') conflicts.push(`${sentence} (it is running; stop it or wait for it to end)`);
    else {
      changes.push(sentence);
      updates.push({ task: t.name, patch });
    }
  }
  if (conflicts.length > 0) throw new DefinitionConflictError(record.name, conflicts);
  for (const u of updates) await store.updateTaskRecord(record.name, u.task, u.patch);
  if (record.failFast !== definition.failFast) {
    await store.updateContainer(record.name, { failFast: definition.failFast });
    changes.push(`failFast ${record.failFast} -> ${definition.failFast}`);
  }
  return changes;
}
