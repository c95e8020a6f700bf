/**
 * OpenTelemetry overhead: with `@opentelemetry/api` installed and no SDK
 * registered, runners wrap every handler in a (non-recording) span
 * (src/observe/tracing.ts, RunnerOption `tracing`, default true). Runs a flat
 * container of no-op tasks with `tracing: false` and with the default, in
 * alternating rounds on fresh databases, and compares the median tasks/s.
 */
import { Runner } from '../../src/index.js';
import { shaped } from './containers.js';
import { budgetFor, openDb, runnerOptions, runWithBudget, type Ctx } from './harness.js';
import { round } from './monitor.js';
import { median, type Results } from './report.js';

/** Goal: tasks/s with tracing on at most this fraction (0–1) below tracing off. */
export const TRACING_OVERHEAD_GOAL = 0.02;

export async function tracingCase(ctx: Ctx, results: Results): Promise<void> {
  const n = ctx.opts.quick ? 300 : 1000;
  const rounds = ctx.opts.quick ? 2 : 4;
  const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first so drift of a shared machine hits both alike.
    const order: Array<'off' | 'on'> = r % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
    for (const mode of order) {
      const db = await openDb(ctx, `tracing-${mode}`);
      try {
        const built = shaped('bench', 'flat', n);
        const runner = await Runner.create({
          connection: db.connection,
          container: built.definition,
          ...runnerOptions(ctx),
          ...(mode === 'off' ? { tracing: false } : {}),
        });
        const run = await runWithBudget(runner, n, budgetFor(ctx, n), `tracing-${mode} round ${r + 1}`);
        rates[mode].push(run.succeeded / run.seconds);
      } finally {
        await db.close();
      }
    }
  }
  const off = median(rates.off);
  const on = median(rates.on);
  const overhead = 1 - on / off;
  results.raw('tracing', { tasks: n, rounds, tasksPerSecond: { off: rates.off.map((x) => round(x, 1)), on: rates.on.map((x) => round(x, 1)) } });
  results.add({
    case: `tracing flat-${n} × ${rounds} rounds`,
    tasks: n,
    ratio: `on ${on.toFixed(0)} vs off ${off.toFixed(0)} tasks/s = ${(on / off).toFixed(3)}×`,
    ratios: { onOverOff: round(on / off, 3) },
    goal: `overhead ≤ ${TRACING_OVERHEAD_GOAL * 100}%`,
    met: overhead <= TRACING_OVERHEAD_GOAL,
    note: `overhead ${(overhead * 100).toFixed(1)}% (medians; per round off ${rates.off.map((x) => x.toFixed(0)).join('/')}, on ${rates.on.map((x) => x.toFixed(0)).join('/')})`,
  });
}
