import pLimit from 'p-limit';
import type { StoreContext } from './context.js';
import { readDirectory } from './directory.js';
import { taskKey, transitionKey } from './keys.js';
import type { TaskDoc, TransitionDoc } from './models.js';

/**
 * A whole-container read by exact `_id`s only: the task directory's pages,
 * each listed task's document, and each task's log probed position by
 * position. Its cost depends on the container alone, never on how many other
 * containers the database holds, which a filter on `container` cannot
 * promise on FerretDB v1 (it scans the collection for any filter but an
 * exact `_id`). It costs about four point reads per task (the task, its
 * log positions, one free position), so it is used for small containers only.
 */

/** Containers whose directory lists more tasks than this are read with a filter instead. */
export const KEYED_READ_MAX_TASKS = 64;

/** Point reads in flight at once per container read. */
const PARALLEL_READS = 32;

/** Log positions probed at once on a task's first round (a claim, an outcome, the first free position). */
const FIRST_PROBES = 3;

export interface KeyedRead {
  tasks: TaskDoc[];
  log: TransitionDoc[];
}

/**
 * The container's task documents and log entries of incarnation `inc`, or
 * null when its directory lists over {@link KEYED_READ_MAX_TASKS} names.
 * With `recheck`, the directory is probed again once everything listed is
 * read, and pages added meanwhile are read too, so that a task staged by an
 * attempt whose success was read is never missing (a page is written before
 * its tasks, which are written before the outcome that makes them visible).
 * @throws OperationTimeoutError when a read got no reply in time and retries ran out
 */
export async function readByKeys(
  ctx: StoreContext,
  container: string,
  inc: string,
  options: { outputs: boolean; recheck: boolean },
): Promise<KeyedRead | null> {
  const limit = pLimit(PARALLEL_READS);
  const projection = options.outputs ? {} : { output: 0 };
  const readTask = (id: string) =>
    limit(() => ctx.read('loadSnapshot', () => ctx.q(ctx.m.tasks.findById(id).lean<TaskDoc>()).exec()));
  const readEntry = (id: string) =>
    limit(() => ctx.read('loadSnapshot', () => ctx.q(ctx.m.transitions.findById(id, projection).lean<TransitionDoc>()).exec()));
  const readLog = async (task: string): Promise<TransitionDoc[]> => {
    const out: TransitionDoc[] = [];
    for (let token = 1, width = FIRST_PROBES; ; token += width, width = 2) {
      const ids = Array.from({ length: width }, (_, i) => transitionKey(container, task, token + i, inc));
      const docs = await Promise.all(ids.map((id) => readEntry(id)));
      for (const doc of docs) {
        if (!doc) return out;
        out.push(doc);
      }
    }
  };
  const seen = new Set<string>();
  const result: KeyedRead = { tasks: [], log: [] };
  let from = 0;
  for (;;) {
    // The recheck probes one number: a page added meanwhile is rare.
    const { pages, end } = await readDirectory(ctx, container, inc, from, from === 0 ? 2 : 1);
    const fresh: string[] = [];
    for (const page of pages) {
      for (const name of page.names) {
        if (seen.has(name)) continue;
        seen.add(name);
        fresh.push(name);
      }
    }
    if (seen.size > KEYED_READ_MAX_TASKS) return null;
    await Promise.all(
      fresh.map(async (name) => {
        const [doc, log] = await Promise.all([readTask(taskKey(container, name, inc)), readLog(name)]);
        if (!doc) return; // listed, never inserted or deleted since
        result.tasks.push(doc);
        result.log.push(...log);
      }),
    );
    if (!options.recheck || pages.length === 0) return rereadBehind(result, readLog);
    from = end;
  }
}

/**
 * The reads of one container are not one instant: a claim written behind
 * another task's outcome (`behind`) may be read after that insert while the
 * other task's log was read before it, and the container would show both
 * running. That outcome was stored before or with the claim, so the other
 * task's log is read again (once; rare).
 */
async function rereadBehind(result: KeyedRead, readLog: (task: string) => Promise<TransitionDoc[]>): Promise<KeyedRead> {
  const ids = new Set(result.log.map((d) => d._id));
  const stale = new Set<string>();
  for (const d of result.log) {
    if (d.behind === undefined || ids.has(d.behind)) continue;
    // A transition key is `[container, task, token(, incarnation)]` as JSON (keys.ts).
    const task = (JSON.parse(d.behind) as unknown[])[1];
    if (typeof task === 'string') stale.add(task);
  }
  if (stale.size === 0) return result;
  const again = new Map(await Promise.all([...stale].map(async (task) => [task, await readLog(task)] as const)));
  return { tasks: result.tasks, log: [...result.log.filter((d) => !again.has(d.task)), ...[...again.values()].flat()] };
}
