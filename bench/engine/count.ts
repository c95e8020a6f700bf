/**
 * Goal 1: round trips and documents read per task, for flat and chain
 * containers, creation (Runner.create) and run (runner.run()) apart.
 */
import { Runner } from '../../src/index.js';
import { shaped, type Shape } from './containers.js';
import { budgetFor, openDb, runnerOptions, runWithBudget, secondsSince, type BudgetedRun, type Ctx } from './harness.js';
import { perTask, round, type Counts } from './monitor.js';
import { label, overBy, type Results } from './report.js';

export interface CountCase {
  name: string;
  shape: Shape;
  tasks: number;
  buildSeconds: number;
  create: { seconds: number; counts: Counts; perTask: ReturnType<typeof perTask> };
  run: BudgetedRun & { counts: Counts; perTask: ReturnType<typeof perTask> };
}

/** Goal: at most this many commands per task in the run, heartbeats included. */
export const RUN_COMMANDS_GOAL = 3;
/** Goal: per-task figures at 100k at most this times those at 1k. */
export const SCALING_GOAL = 1.3;

/** `budgetS` overrides the default budget of the size (not `--budget`). */
export async function countCase(ctx: Ctx, shape: Shape, n: number, results: Results, budgetS?: number): Promise<CountCase> {
  const name = `${shape}-${label(n)}`;
  const built = shaped('bench', shape, n);
  const db = await openDb(ctx, name);
  try {
    let c0 = db.counter.snapshot();
    let t0 = performance.now();
    const runner = await Runner.create({ connection: db.connection, container: built.definition, ...runnerOptions(ctx) });
    const createSeconds = secondsSince(t0);
    const createCounts = db.counter.since(c0);
    c0 = db.counter.snapshot();
    t0 = performance.now();
    const run = await runWithBudget(runner, n, ctx.opts.budgetS ?? budgetS ?? budgetFor(ctx, n), name);
    const runCounts = db.counter.since(c0);
    const result: CountCase = {
      name,
      shape,
      tasks: n,
      buildSeconds: round(built.buildSeconds),
      create: { seconds: round(createSeconds), counts: createCounts, perTask: perTask(createCounts, n) },
      // Per task that succeeded in this run: for a partial run, per task done so far.
      run: { ...run, seconds: round(run.seconds), counts: runCounts, perTask: perTask(runCounts, run.succeeded) },
    };
    results.raw(name, result);
    results.add({
      case: `${name} create`,
      tasks: n,
      cmdsPerTask: result.create.perTask.commands,
      docsPerTask: result.create.perTask.docs,
      seconds: result.create.seconds,
      note: `definition built in ${built.buildSeconds.toFixed(2)} s, not counted`,
    });
    results.add({
      case: `${name} run`,
      tasks: n,
      cmdsPerTask: result.run.perTask.commands,
      docsPerTask: result.run.perTask.docs,
      seconds: result.run.seconds,
      goal: `≤ ${RUN_COMMANDS_GOAL} cmds/task`,
      met: result.run.perTask.commands <= RUN_COMMANDS_GOAL,
      note: [
        run.finished ? undefined : `did not finish: ${run.succeeded} of ${n} tasks in ${run.budgetS} s`,
        overBy(result.run.perTask.commands, RUN_COMMANDS_GOAL),
        byNameText(result.run.perTask.byName),
      ]
        .filter(Boolean)
        .join('; '),
    });
    return result;
  } finally {
    await db.close();
  }
}

function byNameText(byName: Record<string, number>): string {
  return Object.entries(byName)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** Unrounded per-task figures of one phase (the run's per task that succeeded). */
function exact(c: CountCase, phase: 'create' | 'run'): { cmds: number; docs: number } {
  const n = Math.max(1, phase === 'create' ? c.tasks : c.run.succeeded);
  return { cmds: c[phase].counts.commands / n, docs: c[phase].counts.docs / n };
}

/** a ÷ b for each figure; 0 ÷ 0 is 1 (no change), x ÷ 0 is Infinity. */
function ratios(a: { cmds: number; docs: number }, b: { cmds: number; docs: number }): { cmds: number; docs: number } {
  const div = (x: number, y: number) => (y === 0 ? (x === 0 ? 1 : Infinity) : x / y);
  return { cmds: div(a.cmds, b.cmds), docs: div(a.docs, b.docs) };
}

/** Per-task figures of a big case against the 1k case of the same shape. */
export function scalingRows(cases: CountCase[], results: Results): void {
  for (const shape of ['flat', 'chain'] as const) {
    const base = cases.find((c) => c.shape === shape && c.tasks === 1000);
    if (!base) continue;
    for (const big of cases.filter((c) => c.shape === shape && c.tasks > 1000)) {
      for (const phase of ['create', 'run'] as const) {
        const { cmds, docs } = ratios(exact(big, phase), exact(base, phase));
        const worst = Math.max(cmds, docs);
        const partial = phase === 'run' && !big.run.finished ? `partial: ${big.run.succeeded} of ${big.tasks} tasks` : undefined;
        results.add({
          case: `${shape} ${phase} ${label(big.tasks)} vs 1k`,
          tasks: big.tasks,
          ratio: `cmds ${cmds.toFixed(2)}×, docs ${docs.toFixed(2)}×`,
          ratios: { commandsPerTask: round(cmds), docsPerTask: round(docs) },
          goal: `≤ ${SCALING_GOAL}× (at 100k)`,
          met: worst <= SCALING_GOAL,
          note: [big.tasks < 100_000 ? 'goal is stated for 100k' : undefined, overBy(worst, SCALING_GOAL), partial].filter(Boolean).join('; '),
        });
      }
    }
  }
}

/** Goal: a 400-task chain costs no more per task than a 400-task flat container. */
export function chainVsFlatRow(chain: CountCase, flat: CountCase, results: Results): void {
  const { cmds, docs } = ratios(exact(chain, 'run'), exact(flat, 'run'));
  const worst = Math.max(cmds, docs);
  results.add({
    case: `chain-${label(chain.tasks)} vs flat-${label(flat.tasks)} run`,
    tasks: chain.tasks,
    ratio: `cmds ${cmds.toFixed(2)}×, docs ${docs.toFixed(2)}×`,
    ratios: { commandsPerTask: round(cmds), docsPerTask: round(docs) },
    goal: '≤ 1.0×',
    met: worst <= 1,
    note: [overBy(worst, 1), chain.run.finished && flat.run.finished ? undefined : 'partial'].filter(Boolean).join('; '),
  });
}
