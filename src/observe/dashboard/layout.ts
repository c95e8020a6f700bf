import dagre from '@dagrejs/dagre';
import type { TaskStatusReport } from '../../status/container-status.js';

/** Node size in the drawing, in CSS pixels. */
const NODE_WIDTH = 170;
const NODE_HEIGHT = 44;
/** Above this many tasks the graph is not laid out (the task table still lists every task). */
export const MAX_GRAPH_TASKS = 600;

/** Positions of a container's DAG (CSS pixels, origin top left), laid out by dagre (left to right). */
export interface GraphLayout {
  width: number;
  height: number;
  nodes: Array<{ name: string; x: number; y: number; width: number; height: number }>;
  /** Each edge as a polyline from the dependency to the dependent. */
  edges: Array<{ from: string; to: string; points: Array<{ x: number; y: number }> }>;
  /** True when the container had more than {@link MAX_GRAPH_TASKS} tasks and nothing was laid out. */
  omitted: boolean;
}

/** Lays out the tasks' dependency graph with dagre (https://github.com/dagrejs/dagre). */
export function layoutGraph(tasks: readonly Pick<TaskStatusReport, 'name' | 'dependsOn'>[]): GraphLayout {
  if (tasks.length > MAX_GRAPH_TASKS) return { width: 0, height: 0, nodes: [], edges: [], omitted: true };
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(tasks.map((t) => t.name));
  for (const t of tasks) g.setNode(t.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const t of tasks) for (const dep of t.dependsOn) if (names.has(dep)) g.setEdge(dep, t.name);
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: Math.ceil(graph.width ?? 0),
    height: Math.ceil(graph.height ?? 0),
    nodes: g.nodes().map((name: string) => {
      const n = g.node(name);
      return { name, x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height };
    }),
    edges: g.edges().map((e: { v: string; w: string }) => ({ from: e.v, to: e.w, points: g.edge(e).points.map((p: { x: number; y: number }) => ({ x: p.x, y: p.y })) })),
    omitted: false,
  };
}
