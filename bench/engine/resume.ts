/**
 * Resume after a crash: a runner process runs a flat no-op container until
 * half its tasks succeeded and is SIGKILLed; a new process then resumes it.
 * Figures, all from the resuming process in the same run: `Runner.create`
 * until the first `task:started`, against a plain find of the task
 * documents (the floor: every resume must at least learn its tasks), made
 * right before and after it in the same process, and the longest event-loop
 * block and the peak RSS over the process's baseline while it resumes, until
 * its full read is taken in. Three resuming processes one after the other
 * (two at 50k tasks and more); the median ratio is reported.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openDb, reportOf, type Ctx } from './harness.js';
import { round } from './monitor.js';
import type { ResumeJob, ResumeReport } from './resume-child.js';
import { label, median, overBy, type Results } from './report.js';

/** Goal: the first task starts within this many times a plain find of the tasks. */
export const RESUME_GOAL = 1.5;
/** Goal: the first task starts within this many ms of `Runner.create`. */
export const FIRST_START_GOAL_MS = 1000;
/** Goal: no event-loop block longer than this while resuming, ms. */
export const LOOP_BLOCK_GOAL_MS = 50;

/** New processes that resume, one after the other (fewer for a large container: each waits for its full read). */
const resumesFor = (n: number): number => (n >= 50_000 ? 2 : 3);
/** Goal: a runner's RSS over its baseline while it resumes, per 100k tasks (the issue's bound for a running runner). */
export const RSS_GOAL_MB_PER_100K = 100;

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** A figure sent by a child: NaN comes through IPC (JSON) as null. */
const figure = (x: number | null): number => (x === null ? Number.NaN : x);
const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
const ms = (x: number | null): string => (Number.isNaN(figure(x)) ? 'n/a' : figure(x).toFixed(0));

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

function spawnRole(job: ResumeJob): ChildProcess {
  return fork(fileURLToPath(new URL('./resume-child.ts', import.meta.url)), [], {
    env: { ...process.env, BENCH_RESUME_JOB: JSON.stringify(job) },
    // BENCH_CPU_PROF=<dir>: the resuming processes write a CPU profile there (node --cpu-prof).
    execArgv: ['--import', TSX, '--expose-gc', ...(process.env.BENCH_CPU_PROF && job.role === 'resume' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Runs the preparing process until it reports half done, then SIGKILLs it. */
async function prepareHalfDone(job: ResumeJob): Promise<number> {
  const t0 = performance.now();
  const child = spawnRole(job);
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m) => {
      if (m === 'half') {
        child.kill('SIGKILL');
        resolve();
      } else if (m === 'finished') reject(new Error('the preparing runner finished before it was killed'));
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`preparing runner exited ${code}`))));
  });
  await new Promise((r) => child.once('exit', r).once('close', r));
  return (performance.now() - t0) / 1000;
}

async function resumeOnce(job: ResumeJob): Promise<ResumeReport> {
  const child = spawnRole(job);
  return reportOf<ResumeReport>(child, 'resuming runner');
}

export async function resumeCase(ctx: Ctx, n: number, results: Results): Promise<void> {
  const db = await openDb(ctx, `resume-${label(n)}`);
  try {
    const job: ResumeJob = { role: 'prepare', uri: db.uri, tasks: n, concurrency: Math.max(ctx.opts.concurrency, 256), pollMs: ctx.opts.pollMs };
    const prepSeconds = await prepareHalfDone(job);
    const done = await db.connection.collection('pts_transitions').countDocuments({ container: 'bench', kind: 'succeeded' });
    console.error(`  resume: ${done} of ${n} tasks done when the runner was SIGKILLed (${prepSeconds.toFixed(1)} s)`);
    // Three new processes one after the other, each compared with the finds
    // it made right before and after itself; the median of the three is reported.
    const reports: ResumeReport[] = [];
    for (let i = 0; i < resumesFor(n); i++) reports.push(await resumeOnce({ ...job, role: 'resume', concurrency: ctx.opts.concurrency }));
    const ratios = reports.map((r) => figure(r.firstStartMs) / mean(r.findMs));
    const ratio = median(ratios);
    const report = reports[ratios.indexOf(ratio)] ?? reports[0]!;
    const findMs = mean(report.findMs);
    const worstCpu = Math.max(...reports.map((r) => r.maxLoopCpuMs));
    const worstGap = Math.max(...reports.map((r) => r.maxLoopGapMs));
    const worstMain = Math.max(...reports.map((r) => figure(r.maxLoopMainCpuMs)));
    for (const r of reports) {
      console.error(
        `  resume ${label(n)}: first start ${ms(r.firstStartMs)} ms, find ${mean(r.findMs).toFixed(0)} ms, full read in ${ms(r.fullReadMs)} ms, block ${ms(r.maxLoopMainCpuMs)} ms main-thread CPU / ${r.maxLoopCpuMs.toFixed(0)} ms process CPU / ${r.maxLoopGapMs.toFixed(0)} ms wall, RSS +${((r.peakRss - r.baselineRss) / 2 ** 20).toFixed(0)} MB (heap ${mb(r.baselineHeapUsed)} MB at baseline, ${mb(r.peakHeapUsed)} MB peak, ${mb(r.liveHeapUsed)} MB live after a full GC; Buffers peak ${mb(r.peakArrayBuffers)} MB)${r.blocks.length > 0 ? `; turns over ${LOOP_BLOCK_GOAL_MS} ms: ${r.blocks.map((b) => `${b.mainCpuMs.toFixed(0)} ms at ${b.atUs} µs`).join(', ')}` : ''}`,
      );
    }
    results.raw(`resume-${label(n)}`, { tasks: n, doneBefore: done, preparationSeconds: round(prepSeconds), resumes: reports, ratios: ratios.map((r) => round(r)), ratio: round(ratio) });
    results.add({
      case: `resume flat-${label(n)} after SIGKILL`,
      tasks: n,
      seconds: round(report.firstStartMs / 1000, 3),
      ratio: `first start ${ms(report.firstStartMs)} vs find ${findMs.toFixed(0)} ms = ${ratio.toFixed(2)}× (median of ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
      ratios: { resumeOverFind: round(ratio), firstStartMs: round(report.firstStartMs, 0) },
      goal: `≤ ${RESUME_GOAL}×, ≤ ${FIRST_START_GOAL_MS} ms`,
      met: ratio <= RESUME_GOAL && report.firstStartMs <= FIRST_START_GOAL_MS,
      note: [
        overBy(ratio, RESUME_GOAL),
        `create ${report.createMs.toFixed(0)} ms`,
        Number.isNaN(figure(report.fullReadMs)) ? 'full read not taken in within 10 finds' : `full read taken in ${ms(report.fullReadMs)} ms = ${(report.fullReadMs / findMs).toFixed(2)}× find`,
        `${done} of ${n} done before`,
      ]
        .filter(Boolean)
        .join('; '),
    });
    results.add({
      case: `resume flat-${label(n)} event loop`,
      tasks: n,
      ratio: `longest block ${worstMain.toFixed(0)} ms main-thread CPU (${worstCpu.toFixed(0)} ms process CPU, ${worstGap.toFixed(0)} ms wall)`,
      ratios: { maxLoopBlockMs: round(worstGap, 0), maxLoopCpuMs: round(worstCpu, 0), maxLoopMainCpuMs: round(worstMain, 0) },
      goal: `≤ ${LOOP_BLOCK_GOAL_MS} ms`,
      met: (Number.isNaN(worstMain) ? worstCpu : worstMain) <= LOOP_BLOCK_GOAL_MS,
      note: `a 10 ms timer's lateness (wall: includes waiting for a core on a busy machine), the CPU the main thread used between two of its runs (judged: work the event loop did without a break, garbage collection on it included; the process figure adds the collector's and the driver's helper threads, which run beside the loop), from create until 1 s after the first start and after the full read was taken in (${ms(report.fullReadMs)} ms after create)`,
    });
    const overMB = Math.max(...reports.map((r) => (r.peakRss - r.baselineRss) / 2 ** 20));
    const heapMB = Math.max(...reports.map((r) => r.peakHeapUsed / 2 ** 20));
    const liveMB = Math.max(...reports.map((r) => (r.liveHeapUsed - r.baselineHeapUsed) / 2 ** 20));
    const rssGoalMB = (RSS_GOAL_MB_PER_100K * Math.max(n, 100_000)) / 100_000;
    results.add({
      case: `resume flat-${label(n)} memory`,
      tasks: n,
      ratio: `peak RSS ${overMB.toFixed(0)} MB over baseline (heap peak ${heapMB.toFixed(0)} MB; live heap after a full GC ${liveMB.toFixed(0)} MB over baseline)`,
      ratios: { rssOverBaselineMB: round(overMB, 0), peakHeapMB: round(heapMB, 0), liveHeapOverBaselineMB: round(liveMB, 0) },
      goal: `≤ ${rssGoalMB} MB`,
      met: overMB <= rssGoalMB,
      note: `sampled every 10 ms from create until the full read was taken in + 1 s; the baseline is after connecting and building the definition (worst of ${reports.length})`,
    });
  } finally {
    await db.close();
  }
}
