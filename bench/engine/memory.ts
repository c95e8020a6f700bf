/**
 * Goal 4: the runner's RSS per 100k tasks, measured in a process of its own
 * (memory-child.ts) so the benchmark's own memory is not counted.
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { budgetFor, reportOf, uriFor, type Ctx } from './harness.js';
import type { MemoryJob, MemoryReport } from './memory-child.js';
import { round } from './monitor.js';
import { label, overBy, type Results } from './report.js';

/** Goal: at most this many MB of RSS per 100k tasks. */
export const MEMORY_GOAL_MB = 100;

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export async function memoryCase(ctx: Ctx, results: Results): Promise<void> {
  const n = ctx.opts.memorySize;
  const job: MemoryJob = {
    uri: uriFor(ctx.serverUri, `pts_bench_memory_${Date.now()}`),
    tasks: n,
    concurrency: ctx.opts.concurrency,
    pollMs: ctx.opts.pollMs,
    budgetS: budgetFor(ctx, n),
  };
  const child = fork(fileURLToPath(new URL('./memory-child.ts', import.meta.url)), [], {
    env: { ...process.env, BENCH_MEMORY_JOB: JSON.stringify(job) },
    execArgv: ['--import', TSX, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const report = await reportOf<MemoryReport>(child, 'memory child');
  const mb = (report.peakRss - report.baselineRss) / 2 ** 20;
  const per100k = (mb * 100_000) / n;
  results.raw(`memory-${label(n)}`, {
    ...report,
    run: { ...report.run, seconds: round(report.run.seconds) },
    peakOverBaselineMB: round(mb, 1),
    mbPer100kTasks: round(per100k, 1),
  });
  results.add({
    case: `memory flat-${label(n)}`,
    tasks: n,
    seconds: round(report.run.seconds),
    ratio: `peak +${mb.toFixed(1)} MB RSS = ${per100k.toFixed(1)} MB/100k tasks`,
    ratios: { mbPer100kTasks: round(per100k, 1) },
    goal: `≤ ${MEMORY_GOAL_MB} MB/100k`,
    met: per100k <= MEMORY_GOAL_MB,
    note: [
      overBy(per100k, MEMORY_GOAL_MB),
      n < 100_000 ? `measured at ${label(n)}, scaled` : undefined,
      report.run.finished ? undefined : `did not finish: ${report.run.succeeded} of ${n} tasks in ${report.run.budgetS} s`,
    ]
      .filter(Boolean)
      .join('; '),
  });
}
