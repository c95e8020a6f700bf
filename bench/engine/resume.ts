/**
 * Resume after a crash: a runner process runs a flat no-op container until
 * half its tasks succeeded and is SIGKILLed; a new process then resumes it.
 * Figures, all from the resuming process in the same run: `Runner.create`
 * until the first `task:started`, against a plain find of the task
 * documents (the floor: every resume must at least learn its tasks), made
 * right before and after it in the same process, and the longest event-loop
 * block while it resumes. Three resuming processes, one after the other; the
 * median ratio is reported.
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

/** New processes that resume, one after the other. */
const RESUMES = 3;

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

function spawnRole(job: ResumeJob): ChildProcess {
  return fork(fileURLToPath(new URL('./resume-child.ts', import.meta.url)), [], {
    env: { ...process.env, BENCH_RESUME_JOB: JSON.stringify(job) },
    execArgv: ['--import', TSX],
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

export async function resumeCase(ctx: Ctx, results: Results): Promise<void> {
  const n = ctx.opts.resumeSize;
  const db = await openDb(ctx, `resume-${label(n)}`);
  try {
    const job: ResumeJob = { role: 'prepare', uri: db.uri, tasks: n, concurrency: Math.max(ctx.opts.concurrency, 256), pollMs: ctx.opts.pollMs };
    const prepSeconds = await prepareHalfDone(job);
    const done = await db.connection.collection('pts_transitions').countDocuments({ container: 'bench', kind: 'succeeded' });
    console.error(`  resume: ${done} of ${n} tasks done when the runner was SIGKILLed (${prepSeconds.toFixed(1)} s)`);
    // Three new processes one after the other, each compared with the finds
    // it made right before and after itself; the median of the three is reported.
    const reports: ResumeReport[] = [];
    for (let i = 0; i < RESUMES; i++) reports.push(await resumeOnce({ ...job, role: 'resume', concurrency: ctx.opts.concurrency }));
    const ratios = reports.map((r) => r.firstStartMs / mean(r.findMs));
    const ratio = median(ratios);
    const report = reports[ratios.indexOf(ratio)] ?? reports[0]!;
    const findMs = mean(report.findMs);
    const worstCpu = Math.max(...reports.map((r) => r.maxLoopCpuMs));
    const worstGap = Math.max(...reports.map((r) => r.maxLoopGapMs));
    results.raw(`resume-${label(n)}`, { tasks: n, doneBefore: done, preparationSeconds: round(prepSeconds), resumes: reports, ratios: ratios.map((r) => round(r)), ratio: round(ratio) });
    results.add({
      case: `resume flat-${label(n)} after SIGKILL`,
      tasks: n,
      seconds: round(report.firstStartMs / 1000, 3),
      ratio: `first start ${report.firstStartMs.toFixed(0)} vs find ${findMs.toFixed(0)} ms = ${ratio.toFixed(2)}× (median of ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
      ratios: { resumeOverFind: round(ratio), firstStartMs: round(report.firstStartMs, 0) },
      goal: `≤ ${RESUME_GOAL}×, ≤ ${FIRST_START_GOAL_MS} ms`,
      met: ratio <= RESUME_GOAL && report.firstStartMs <= FIRST_START_GOAL_MS,
      note: [overBy(ratio, RESUME_GOAL), `create ${report.createMs.toFixed(0)} ms`, `${done} of ${n} done before`].filter(Boolean).join('; '),
    });
    results.add({
      case: `resume flat-${label(n)} event loop`,
      tasks: n,
      ratio: `longest block ${worstGap.toFixed(0)} ms wall, ${worstCpu.toFixed(0)} ms CPU`,
      ratios: { maxLoopBlockMs: round(worstGap, 0), maxLoopCpuMs: round(worstCpu, 0) },
      goal: `≤ ${LOOP_BLOCK_GOAL_MS} ms`,
      met: worstCpu <= LOOP_BLOCK_GOAL_MS,
      note: `a 10 ms timer's lateness (wall: includes waiting for a core on a busy machine) and the CPU used between two of its runs (judged), from create to the first start + 1 s and until 1.5× a find (the full read taken in)`,
    });
  } finally {
    await db.close();
  }
}
