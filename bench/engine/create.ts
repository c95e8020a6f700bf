/**
 * Creating a large flat container (issue 13, Deliver 3: "creating a
 * 1M-task container streams, with flat memory"): `Runner.create` in a
 * process of its own (create-child.ts) per size, its time and its peak RSS
 * and heap over the baseline taken once the definition was declared (the
 * user's part, reported apart as build time). The largest size against the
 * smallest gives the growth of memory against the growth of tasks.
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { reportOf, uriFor, type Ctx } from './harness.js';
import type { CreateJob, CreateReport } from './create-child.js';
import { round } from './monitor.js';
import { label, type Results } from './report.js';

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const MB = 2 ** 20;

function createInChild(ctx: Ctx, tasks: number): Promise<CreateReport> {
  const job: CreateJob = { uri: uriFor(ctx.serverUri, `pts_bench_create_${Date.now()}`), tasks };
  const child = fork(fileURLToPath(new URL('./create-child.ts', import.meta.url)), [], {
    env: { ...process.env, BENCH_CREATE_JOB: JSON.stringify(job) },
    execArgv: ['--import', TSX, '--expose-gc', '--max-old-space-size=4096'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return reportOf<CreateReport>(child, 'create child');
}

export async function createCase(ctx: Ctx, results: Results): Promise<void> {
  const reports: CreateReport[] = [];
  for (const n of ctx.opts.createSizes) {
    const r = await createInChild(ctx, n);
    reports.push(r);
    const rssMb = (r.peakRss - r.baselineRss) / MB;
    const heapMb = (r.peakHeapUsed - r.baselineHeapUsed) / MB;
    const keptMb = (r.heapAfterGc - r.baselineHeapUsed) / MB;
    const liveMb = (r.peakLiveHeap - r.baselineHeapUsed) / MB;
    results.raw(`create-${label(n)}`, { ...r, rssOverBaselineMB: round(rssMb, 1), heapOverBaselineMB: round(heapMb, 1) });
    results.add({
      case: `create flat-${label(n)}`,
      tasks: n,
      seconds: round(r.createSeconds),
      ratio: `${Math.round(n / r.createSeconds)} tasks/s; peak +${rssMb.toFixed(1)} MB RSS, +${heapMb.toFixed(1)} MB heap (+${liveMb.toFixed(1)} MB held live, sampled after a full collection every 2 s); kept after gc +${keptMb.toFixed(1)} MB heap (${((keptMb * MB) / n).toFixed(0)} bytes a task, the runner's picture included)`,
      ratios: { tasksPerS: Math.round(n / r.createSeconds), rssOverBaselineMB: round(rssMb, 1), heapOverBaselineMB: round(heapMb, 1), heapKeptMB: round(keptMb, 1), heapLiveMB: round(liveMb, 1) },
      met: r.storedTasks === n,
      goal: 'every task stored',
      note: `declared in ${r.buildSeconds.toFixed(1)} s (user's part); ${r.graphPages} graph pages; ${r.storedTasks} task documents`,
    });
  }
  if (reports.length < 2) return;
  const small = reports[0]!;
  const large = reports.at(-1)!;
  const growth = (large.peakRss - large.baselineRss) / Math.max(1, small.peakRss - small.baselineRss);
  const tasks = large.tasks / small.tasks;
  results.add({
    case: `create ${label(large.tasks)} ÷ ${label(small.tasks)}`,
    tasks: large.tasks,
    ratio: `RSS over baseline ×${growth.toFixed(2)} for ×${tasks.toFixed(0)} tasks; time ×${(large.createSeconds / small.createSeconds).toFixed(2)}`,
    ratios: { rssGrowth: round(growth, 2), taskGrowth: tasks, timeGrowth: round(large.createSeconds / small.createSeconds, 2) },
    met: null,
  });
}
