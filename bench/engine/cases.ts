/**
 * Goals 2, 5 and 6: throughput against the driver's floor, join delay,
 * slot utilisation with real work (resume: resume.ts).
 */
import { Runner } from '../../src/index.js';
import { diamonds, shaped, sleepers } from './containers.js';
import { budgetFor, openDb, pollMsOf, runnerOptions, runWithBudget, secondsSince, type Ctx } from './harness.js';
import { perTask, round } from './monitor.js';
import { label, median, overBy, quantile, underBy, type Results } from './report.js';

/** Goal 2: the engine's no-op tasks/s at least this share of the floor's. */
export const THROUGHPUT_GOAL = 0.6;
/** Goal 6: wall time at most this times the ideal. */
export const SLOTS_GOAL = 1.1;

/**
 * The server's limit for what a task must write: per task, insert a claim
 * document, then an outcome document (unique string _ids), with `workers`
 * in parallel, through the driver alone.
 */
async function durableWriteFloor(ctx: Ctx, n: number, workers: number): Promise<number> {
  const db = await openDb(ctx, 'floor');
  try {
    const coll = db.connection.collection<{ _id: string; task: number; kind: string }>('floor');
    const wc = { writeConcern: { w: 'majority' as const } }; // as the engine's writes
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: workers }, async () => {
        for (let i = next++; i < n; i = next++) {
          await coll.insertOne({ _id: `claim-${i}`, task: i, kind: 'claim' }, wc);
          await coll.insertOne({ _id: `outcome-${i}`, task: i, kind: 'outcome' }, wc);
        }
      }),
    );
    return secondsSince(t0);
  } finally {
    await db.close();
  }
}

export async function throughputCase(ctx: Ctx, results: Results): Promise<void> {
  const n = 1000;
  const c = ctx.opts.concurrency;
  const floorSeconds = await durableWriteFloor(ctx, n, c);
  const built = shaped('bench', 'flat', n);
  const db = await openDb(ctx, 'throughput');
  try {
    const runner = await Runner.create({ connection: db.connection, container: built.definition, ...runnerOptions(ctx) });
    const run = await runWithBudget(runner, n, budgetFor(ctx, n), 'throughput');
    const engineRate = run.succeeded / run.seconds;
    const floorRate = n / floorSeconds;
    const ratio = engineRate / floorRate;
    results.raw('throughput', {
      tasks: n,
      concurrency: c,
      floor: { seconds: round(floorSeconds), tasksPerSecond: round(floorRate, 1), writesPerTask: 2 },
      engine: { ...run, seconds: round(run.seconds), tasksPerSecond: round(engineRate, 1) },
      ratio: round(ratio),
    });
    results.add({
      case: 'throughput flat-1k',
      tasks: n,
      seconds: round(run.seconds),
      ratio: `${engineRate.toFixed(0)} vs ${floorRate.toFixed(0)} tasks/s = ${ratio.toFixed(2)}× floor`,
      ratios: { engineOverFloor: round(ratio) },
      goal: `≥ ${THROUGHPUT_GOAL}×`,
      met: ratio >= THROUGHPUT_GOAL,
      note: [underBy(ratio, THROUGHPUT_GOAL), run.finished ? undefined : `did not finish: ${run.succeeded} of ${n}`].filter(Boolean).join('; '),
    });
  } finally {
    await db.close();
  }
}

export async function joinCase(ctx: Ctx, results: Results): Promise<void> {
  const n = ctx.opts.diamonds;
  const built = diamonds('bench', n);
  const db = await openDb(ctx, 'join');
  try {
    const runner = await Runner.create({ connection: db.connection, container: built.definition, ...runnerOptions(ctx) });
    const succeeded = new Map<string, number>();
    const started = new Map<string, number>();
    runner.on('task:succeeded', (e) => void succeeded.set(e.task, performance.now()));
    runner.on('task:started', (e) => void started.set(e.task, performance.now()));
    const run = await runWithBudget(runner, 4 * n, budgetFor(ctx, 4 * n), 'join');
    const delays: number[] = [];
    for (let i = 0; i < n; i++) {
      const b = succeeded.get(`b${i}`);
      const c = succeeded.get(`c${i}`);
      const d = started.get(`d${i}`);
      if (b !== undefined && c !== undefined && d !== undefined) delays.push(d - Math.max(b, c));
    }
    const p50 = median(delays);
    const p90 = quantile(delays, 0.9);
    const poll = pollMsOf(ctx);
    results.raw('join', {
      diamonds: n,
      run: { ...run, seconds: round(run.seconds) },
      pollMs: poll,
      delaysMs: delays.map((d) => round(d, 1)),
      medianMs: round(p50, 1),
      p90Ms: round(p90, 1),
      counts: db.counter.snapshot(),
    });
    results.add({
      case: `join delay ${n} diamonds`,
      tasks: 4 * n,
      seconds: round(run.seconds),
      ratio: `median ${p50.toFixed(0)} ms, p90 ${p90.toFixed(0)} ms = ${(p50 / poll).toFixed(2)}/${(p90 / poll).toFixed(2)}× pollMs`,
      ratios: { medianOverPollMs: round(p50 / poll), p90OverPollMs: round(p90 / poll) },
      goal: 'report',
      met: null,
      note: `pollMs ${poll}; ${delays.length} joins measured${run.finished ? '' : `; did not finish: ${run.succeeded} of ${4 * n}`}`,
    });
  } finally {
    await db.close();
  }
}

export async function slotsCase(ctx: Ctx, results: Results): Promise<void> {
  const n = ctx.opts.slotTasks;
  const ms = 300;
  const ideal = (n * ms) / 1000 / ctx.opts.concurrency;
  const built = sleepers('bench', n, ms);
  const db = await openDb(ctx, 'slots');
  try {
    const runner = await Runner.create({ connection: db.connection, container: built.definition, ...runnerOptions(ctx) });
    const run = await runWithBudget(runner, n, Math.max(budgetFor(ctx, n), ideal * 3), 'slots');
    const ratio = run.seconds / ideal;
    const counts = db.counter.snapshot();
    results.raw('slots', { tasks: n, taskMs: ms, idealSeconds: ideal, run: { ...run, seconds: round(run.seconds) }, ratio: round(ratio), counts });
    results.add({
      case: `slots ${n}×${ms} ms`,
      tasks: n,
      seconds: round(run.seconds),
      ratio: `${ratio.toFixed(2)}× ideal ${ideal.toFixed(2)} s`,
      ratios: { overIdeal: round(ratio) },
      goal: `≤ ${SLOTS_GOAL}×`,
      met: run.finished && ratio <= SLOTS_GOAL,
      note: [overBy(ratio, SLOTS_GOAL), run.finished ? undefined : `did not finish: ${run.succeeded} of ${n}`].filter(Boolean).join('; '),
    });
  } finally {
    await db.close();
  }
}
