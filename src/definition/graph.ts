import { CycleError, DuplicateTaskError, UnknownDependencyError } from '../errors.js';

/** A node of a dependency graph: just a name and what it depends on. */
export interface GraphNode {
  readonly name: string;
  readonly dependsOn: readonly string[];
}

/**
 * Checks that names are unique, every dependency exists (in `nodes` or in
 * `existing`), and that there is no cycle. Throws the first problem found.
 */
export function assertValidGraph(nodes: readonly GraphNode[], existing: { has(name: string): boolean } = new Set<string>()): void {
  const byName = new Map<string, GraphNode>();
  for (const node of nodes) {
    if (byName.has(node.name)) throw new DuplicateTaskError(node.name);
    byName.set(node.name, node);
  }
  for (const node of nodes) {
    for (const dep of node.dependsOn) {
      if (!byName.has(dep) && !existing.has(dep)) throw new UnknownDependencyError(node.name, dep);
    }
  }
  const cycle = findCycle(byName);
  if (cycle) throw new CycleError(cycle);
}

/** Depth-first search with colours; returns the cycle's path, first name repeated last. */
function findCycle(byName: ReadonlyMap<string, GraphNode>): string[] | null {
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  // Iterative to survive very deep graphs without a stack overflow.
  for (const start of byName.keys()) {
    if (state.has(start)) continue;
    const stack: Array<{ name: string; next: number }> = [{ name: start, next: 0 }];
    state.set(start, 'visiting');
    path.push(start);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const deps = byName.get(frame.name)?.dependsOn ?? [];
      if (frame.next < deps.length) {
        const dep = deps[frame.next++]!;
        if (!byName.has(dep)) continue; // an already-persisted task: cannot be on a new cycle
        const s = state.get(dep);
        if (s === 'visiting') return [...path.slice(path.indexOf(dep)), dep];
        if (s === undefined) {
          state.set(dep, 'visiting');
          path.push(dep);
          stack.push({ name: dep, next: 0 });
        }
      } else {
        state.set(frame.name, 'done');
        path.pop();
        stack.pop();
      }
    }
  }
  return null;
}

/** Names in an order where every task comes after its dependencies. */
export function topologicalOrder(nodes: readonly GraphNode[]): string[] {
  const indegree = new Map(nodes.map((n) => [n.name, 0]));
  const dependents = new Map<string, string[]>();
  for (const n of nodes) {
    for (const d of n.dependsOn) {
      if (!indegree.has(d)) continue;
      indegree.set(n.name, (indegree.get(n.name) ?? 0) + 1);
      dependents.set(d, [...(dependents.get(d) ?? []), n.name]);
    }
  }
  const queue = nodes.filter((n) => indegree.get(n.name) === 0).map((n) => n.name);
  const order: string[] = [];
  while (queue.length > 0) {
    const name = queue.shift()!;
    order.push(name);
    for (const next of dependents.get(name) ?? []) {
      const left = (indegree.get(next) ?? 0) - 1;
      indegree.set(next, left);
      if (left === 0) queue.push(next);
    }
  }
  return order;
}
