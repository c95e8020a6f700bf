import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { GraphHash } from '../../definition/fingerprint.js';
import type { GraphNode } from '../../definition/graph.js';
import type { StoreContext } from './context.js';
import { graphPageKey, isDuplicateKeyError } from './keys.js';
import type { ContainerGraph, GraphPageDoc } from './models.js';

/**
 * A container's declared graph (task names and dependencies) in pages of
 * their own, read and written by exact `_id` (`graphPageKey(container,
 * incarnation, seq)`, pages 0 … `pages - 1`). The container document names
 * how many there are (its `graph` field), and it is written after every page:
 * a container document never points at a page that was not written. One
 * document held the whole graph before; it reached MongoDB's 16 MiB limit at
 * about 350,000 flat tasks, and on FerretDB v1 every write of the container
 * document rewrote it.
 */

/** Tasks per page at most. */
export const GRAPH_PAGE_TASKS = 10_000;

/** Estimated BSON bytes per page at most (names and dependencies; far below the 16 MiB limit). */
export const GRAPH_PAGE_BYTES = 2 * 1024 * 1024;

/** Pages read at once. */
const READ_WINDOW = 4;

/** BSON bytes of one task of a page, estimated from above (keys, lengths, array indexes). */
function nodeBytes(node: GraphNode): number {
  let bytes = 32 + node.name.length * 3;
  for (const d of node.dependsOn) bytes += 16 + d.length * 3;
  return bytes;
}

/**
 * Writes `graph` in pages under incarnation `inc` (which must be new: made
 * by the create that calls this), one page in memory at a time, the event
 * loop let through between pages. Each page is one insert under `ctx.write`
 * (transient errors retried); a duplicate key can only be our own page whose
 * reply was lost, as nothing else writes under a new incarnation.
 * @returns what the container document records of it
 * @throws OperationTimeoutError when the server gave no reply in time and retries ran out
 */
export async function writeGraph(ctx: StoreContext, container: string, inc: string, graph: Iterable<GraphNode>): Promise<ContainerGraph> {
  const hash = new GraphHash();
  let seq = 0;
  let tasks = 0;
  let page: Array<{ name: string; dependsOn: string[] }> = [];
  let bytes = 0;
  const flush = async () => {
    const doc: GraphPageDoc = { _id: graphPageKey(container, inc, seq), container, incarnation: inc, seq, tasks: page };
    await ctx.write('writeGraph', async (o) => {
      try {
        await ctx.m.graph.collection.insertOne(doc as never, { ...o });
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
    });
    seq++;
    page = [];
    bytes = 0;
    await yieldToLoop();
  };
  for (const node of graph) {
    const size = nodeBytes(node);
    if (page.length > 0 && (page.length >= GRAPH_PAGE_TASKS || bytes + size > GRAPH_PAGE_BYTES)) await flush();
    // The caller's arrays, not copies: the page is serialised, then let go.
    page.push({ name: node.name, dependsOn: node.dependsOn as string[] });
    bytes += size;
    hash.add(node);
    tasks++;
  }
  if (page.length > 0) await flush();
  return { pages: seq, tasks, fingerprint: hash.digest() };
}

/**
 * The graph of incarnation `inc`, read page by page by exact `_id`
 * ({@link READ_WINDOW} at a time), in declaration order; null when a page is
 * missing (its container was deleted and purged meanwhile).
 */
export async function readGraph(ctx: StoreContext, container: string, inc: string, graph: ContainerGraph): Promise<GraphNode[] | null> {
  const nodes: GraphNode[] = [];
  for (let seq = 0; seq < graph.pages; seq += READ_WINDOW) {
    const count = Math.min(READ_WINDOW, graph.pages - seq);
    const window = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        ctx.read('readGraph', () => ctx.q(ctx.m.graph.findById(graphPageKey(container, inc, seq + i)).lean<GraphPageDoc>()).exec()),
      ),
    );
    for (const page of window) {
      if (!page) return null;
      for (const t of page.tasks) nodes.push({ name: t.name, dependsOn: t.dependsOn ?? [] });
    }
  }
  return nodes;
}

/** Deletes the pages a create wrote for a container document it could not insert (by exact `_id`s). */
export async function dropGraph(ctx: StoreContext, container: string, inc: string, graph: ContainerGraph): Promise<void> {
  const ids = Array.from({ length: graph.pages }, (_, seq) => graphPageKey(container, inc, seq));
  if (ids.length > 0) await ctx.write('dropGraph', (o) => ctx.m.graph.deleteMany({ _id: { $in: ids } }, o).exec());
}
