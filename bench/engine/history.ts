/**
 * Goal "costs that do not grow with history": the status read of a small
 * container and a new small run, in an empty database and again beside 300
 * and 10,000 old finished containers (each a copy of a real 20-task run, as
 * the hourly EPF job leaves them), as ratios to the empty database.
 */
import type { Connection } from 'mongoose';
import { defineContainer, MongoStore, Runner, type ContainerBuilder } from '../../src/index.js';
import { directoryKey, taskKey, transitionKey } from '../../src/store/mongo/keys.js';
import { openDb, secondsSince, type Ctx, type Db } from './harness.js';
import { round } from './monitor.js';
import { median, overBy, type Results } from './report.js';

/** Goal: each cost at most this times the same in an empty database. */
export const HISTORY_GOAL = 1.2;

const OLD_TASKS = 20;
const READS = 9;
const RUNS = 3;

function small(name: string, n: number): ContainerBuilder<any> {
  const c = defineContainer(name) as ContainerBuilder<any>;
  for (let i = 0; i < n; i++) c.task(`t${i}`, async () => ({ i }));
  return c;
}

type Raw = Record<string, unknown> & { _id: string };

/** The raw documents of one finished container, to be copied under other names. */
async function template(connection: Connection, name: string): Promise<{ container: Raw; tasks: Raw[]; log: Raw[]; pages: Raw[] }> {
  const col = (c: string) => connection.collection<Raw>(`pts_${c}`);
  const container = (await col('containers').findOne({ _id: name }))!;
  const tasks = await col('tasks').find({ container: name }).toArray();
  const log = await col('transitions').find({ container: name }).toArray();
  const pages = await col('directory').find({ container: name }).toArray();
  return { container, tasks, log, pages };
}

/** Inserts copies of the template until `total` old containers exist (numbered from `from`). */
async function addOld(connection: Connection, t: Awaited<ReturnType<typeof template>>, from: number, total: number): Promise<void> {
  const inc = t.container.incarnation as string;
  const out: Record<string, Raw[]> = { containers: [], tasks: [], transitions: [], directory: [] };
  const flush = async (force: boolean) => {
    for (const [c, docs] of Object.entries(out)) {
      if (docs.length >= 2000 || (force && docs.length > 0)) {
        await connection.collection<Raw>(`pts_${c}`).insertMany(docs.splice(0), { ordered: false });
      }
    }
  };
  for (let i = from; i < total; i++) {
    const name = `old-${i}`;
    out.containers!.push({ ...t.container, _id: name });
    for (const d of t.tasks) out.tasks!.push({ ...d, _id: taskKey(name, d.name as string, inc), container: name });
    for (const d of t.log) out.transitions!.push({ ...d, _id: transitionKey(name, d.task as string, d.token as number, inc), container: name });
    for (const d of t.pages) out.directory!.push({ ...d, _id: directoryKey(name, inc, d.seq as number), container: name });
    await flush(false);
  }
  await flush(true);
}

interface Level {
  old: number;
  readMs: number;
  /** The same read by filter (`find({ container })`), the engine's way before reads by key; null when not measured. */
  filterReadMs: number | null;
  readCommands: number;
  readDocs: number;
  runMs: number;
  runCommands: number;
}

async function measure(db: Db, store: MongoStore, byFilter: MongoStore | null, old: number): Promise<Level> {
  const reads: number[] = [];
  let readCounts = db.counter.snapshot();
  for (let i = 0; i < READS; i++) {
    if (i === 1) readCounts = db.counter.snapshot(); // the first read warms up
    const t0 = performance.now();
    await store.loadSnapshot('watched');
    reads.push(performance.now() - t0);
  }
  const read = db.counter.since(readCounts);
  const filterReads: number[] = [];
  for (let i = 0; byFilter && i < 3; i++) {
    const t0 = performance.now();
    await byFilter.loadSnapshot('watched');
    filterReads.push(performance.now() - t0);
  }
  const before = db.counter.snapshot();
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const runner = await Runner.create({ store, container: small(`new-${old}-${i}`, 5), concurrency: 16 });
    await runner.run();
    runs.push(performance.now() - t0);
  }
  const runMs = median(runs);
  const run = db.counter.since(before);
  return {
    old,
    readMs: median(reads.slice(1)),
    filterReadMs: byFilter ? median(filterReads) : null,
    readCommands: read.commands / (READS - 1),
    readDocs: read.docs / (READS - 1),
    runMs,
    runCommands: run.commands / RUNS,
  };
}

export async function historyCase(ctx: Ctx, results: Results): Promise<void> {
  const levels = ctx.opts.quick ? [0, 300, 1000] : [0, 300, 10_000];
  const db = await openDb(ctx, 'history');
  try {
    const store = await MongoStore.create(db.connection);
    const byFilter = await MongoStore.create(db.connection, { containerReads: 'by-filter' });
    await (await Runner.create({ store, container: small('watched', 5) })).run();
    await (await Runner.create({ store, container: small('template', OLD_TASKS) })).run();
    const t = await template(db.connection, 'template');
    const measured: Level[] = [];
    let have = 0;
    for (const old of levels) {
      const t0 = performance.now();
      await addOld(db.connection, t, have, old);
      have = Math.max(have, old);
      if (old > 0) console.error(`  history: ${old} old containers inserted in ${secondsSince(t0).toFixed(0)} s`);
      await new Promise((r) => setTimeout(r, 3000)); // let the server settle after the bulk insert
      measured.push(await measure(db, store, old <= 1000 ? byFilter : null, old));
    }
    const base = measured[0]!;
    results.raw('history', { oldTasksEach: OLD_TASKS, levels: measured.map((l) => ({ ...l, readMs: round(l.readMs), runMs: round(l.runMs) })) });
    for (const l of measured) {
      if (l.filterReadMs === null) continue;
      results.add({
        case: `history status read by filter (${l.old} old)`,
        tasks: 5,
        seconds: round(l.filterReadMs / 1000),
        ratio: `${l.filterReadMs.toFixed(0)} ms by filter vs ${l.readMs.toFixed(0)} ms by key`,
        ratios: { filterOverKey: round(l.filterReadMs / l.readMs) },
        met: null,
        note: 'reference: the read before keys',
      });
    }
    for (const l of measured.slice(1)) {
      const read = l.readMs / base.readMs;
      const run = l.runMs / base.runMs;
      for (const [what, ratio, ms, baseMs, commands, baseCommands] of [
        ['status read', read, l.readMs, base.readMs, l.readCommands, base.readCommands],
        ['new 5-task run', run, l.runMs, base.runMs, l.runCommands, base.runCommands],
      ] as const) {
        results.add({
          case: `history ${what} (${l.old} old)`,
          tasks: 5,
          seconds: round(ms / 1000),
          ratio: `${ms.toFixed(0)} vs ${baseMs.toFixed(0)} ms empty = ${ratio.toFixed(2)}×; ${round(commands, 1)} vs ${round(baseCommands, 1)} commands`,
          ratios: { overEmpty: round(ratio), commandsOverEmpty: round(commands / baseCommands) },
          goal: `≤ ${HISTORY_GOAL}×`,
          met: ratio <= HISTORY_GOAL,
          note: overBy(ratio, HISTORY_GOAL) ?? '',
        });
      }
    }
  } finally {
    await db.close();
  }
}
