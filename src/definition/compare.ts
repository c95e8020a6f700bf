import type { GraphNode } from './graph.js';

/**
 * Lists how a declared graph differs from the one persisted under the same
 * container name, one sentence per difference; empty when they agree. Only
 * names and dependencies matter: options and handlers may change between runs.
 */
export function diffDefinitions(persisted: readonly GraphNode[], declared: readonly GraphNode[]): string[] {
  const before = new Map(persisted.map((t) => [t.name, t]));
  const after = new Map(declared.map((t) => [t.name, t]));
  const differences: string[] = [];
  for (const [name, old] of before) {
    const now = after.get(name);
    if (!now) {
      differences.push(`task "${name}" is in the persisted run but no longer declared`);
      continue;
    }
    const a = [...old.dependsOn].sort();
    const b = [...now.dependsOn].sort();
    if (a.join('\u0000') !== b.join('\u0000')) {
      differences.push(`task "${name}" depended on [${a.join(', ')}] but now depends on [${b.join(', ')}]`);
    }
  }
  for (const name of after.keys()) {
    if (!before.has(name)) differences.push(`task "${name}" is declared but not in the persisted run`);
  }
  return differences;
}
