import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { TaskRecord } from '../store/types.js';
import type { ContainerDefinition } from './types.js';

/** Declared tasks hashed between two yields to the event loop. */
const HASH_CHUNK = 2000;

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * The fingerprint of what a definition asks the store to hold: failFast and,
 * in declaration order, each task's name, dependencies, handler key, input
 * and options, as JSON. A hex SHA-256, 64 characters. Two definitions with
 * the same fingerprint make the same task records (equal JSON; the reverse
 * need not hold: equal values with keys in another order differ). Hashed in chunks of {@link HASH_CHUNK} tasks,
 * the event loop let through in between.
 */
export async function definitionFingerprint(definition: ContainerDefinition): Promise<string> {
  const hash = createHash('sha256');
  hash.update(stableJson({ failFast: definition.failFast, tasks: definition.tasks.length }));
  for (const [i, t] of definition.tasks.entries()) {
    if (i > 0 && i % HASH_CHUNK === 0) await yieldToLoop();
    hash.update('\n');
    // Plain JSON (key order kept), about 4× cheaper than sorted keys: the
    // same definition built the same way gives the same text; one whose keys
    // come in another order only misses the shortcut (the tasks are compared).
    hash.update(JSON.stringify([t.name, t.dependsOn, t.handlerName, t.input ?? null, t.options]));
  }
  return hash.digest('hex');
}

/**
 * The task records a definition makes, in declaration order (`order` is the
 * index): what a container holds when its applied fingerprint is this
 * definition's and nothing changed its tasks since (see
 * `SnapshotOptions.declared`). `createdAt` is the container's.
 */
export function declaredRecords(definition: ContainerDefinition, createdAt: Date): TaskRecord[] {
  return definition.tasks.map((t, i) => ({
    container: definition.name,
    name: t.name,
    dependsOn: [...t.dependsOn],
    handler: t.handlerName,
    input: t.input ?? null,
    options: t.options,
    dynamic: false,
    addedBy: null,
    stagedBy: null,
    order: i,
    createdAt,
  }));
}

/**
 * Hash of a declared graph (names and dependencies, in declaration order),
 * fed one task at a time: a graph of a million tasks is hashed without a
 * copy of it. `digest()` gives a hex SHA-256, 64 characters.
 */
export class GraphHash {
  private readonly hash = createHash('sha256').update('graph/1');

  /** Adds the next task of the graph. */
  add(node: { readonly name: string; readonly dependsOn: readonly string[] }): void {
    this.hash.update('\n');
    this.hash.update(JSON.stringify([node.name, node.dependsOn]));
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * The fingerprint of a declared graph (see {@link GraphHash}): equal for two
 * graphs with the same names and dependencies in the same order. Hashed in
 * chunks of {@link HASH_CHUNK} tasks, the event loop let through in between.
 */
export async function graphFingerprint(nodes: ReadonlyArray<{ readonly name: string; readonly dependsOn: readonly string[] }>): Promise<string> {
  const hash = new GraphHash();
  for (const [i, node] of nodes.entries()) {
    if (i > 0 && i % HASH_CHUNK === 0) await yieldToLoop();
    hash.add(node);
  }
  return hash.digest();
}
