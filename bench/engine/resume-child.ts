/**
 * The processes of the resume case (forked by cases.ts), by `role`:
 * - `prepare`: creates a flat no-op container and runs it at a wide
 *   concurrency; says `half` once half the tasks succeeded, and is then
 *   SIGKILLed by its parent (its claims in flight stay behind, as after a crash);
 * - `resume`: a new process on the same container: times a plain find of the
 *   task documents, then `Runner.create` until the first `task:started`
 *   (watching its event loop and RSS all along, until its full read of the
 *   container is taken in), then the find again.
 */
import { readFileSync } from 'node:fs';
import mongoose from 'mongoose';
import { Runner } from '../../src/index.js';
import { shaped } from './containers.js';

export interface ResumeJob {
  role: 'prepare' | 'resume';
  uri: string;
  tasks: number;
  concurrency: number;
  pollMs: number | null;
}

export interface ResumeReport {
  /** Plain finds of the container's task documents, ms: one before the resume, one after. */
  findMs: number[];
  tasksFound: number;
  /** `Runner.create`, ms. */
  createMs: number;
  /** From the call of `Runner.create` to the first `task:started`, ms. */
  firstStartMs: number;
  /** Longest the event loop went without running a 10 ms timer, beyond the 10 ms, ms (from create until 1 s after the first start and after the full read was taken in). */
  maxLoopGapMs: number;
  /** Most CPU time (all the process's threads) spent between two runs of that timer, ms: work done without a break. */
  maxLoopCpuMs: number;
  /** Most CPU time of the main thread alone (the event loop's; garbage collection done on it included) between two runs of that timer, ms; NaN where the system does not tell (Linux only). */
  maxLoopMainCpuMs: number;
  rssMB: number;
  /** From the call of `Runner.create` until the runner took its full read in as its picture, ms (NaN: not within the wait). */
  fullReadMs: number;
  /** RSS after connecting and building the definition (garbage collected), before `Runner.create`, bytes. */
  baselineRss: number;
  /** Highest RSS sampled (every 10 ms) from `Runner.create` until the end of the watch, bytes. */
  peakRss: number;
  /** Highest heap used sampled likewise, bytes. */
  peakHeapUsed: number;
  /** Heap used at the baseline, bytes. */
  baselineHeapUsed: number;
  /**
   * Heap used right after a full garbage collection at the end of the watch
   * (full read taken in), bytes: what the runner holds. The peak's excess
   * over it is garbage the collector had not yet reclaimed.
   */
  liveHeapUsed: number;
  /** Highest `arrayBuffers` of `process.memoryUsage()` sampled (Buffers: the driver's replies among them), bytes. */
  peakArrayBuffers: number;
  /**
   * The ticks after which the main thread had used more than the goal's CPU
   * since the previous one: when (monotonic µs, the clock of `node
   * --cpu-prof` profiles: look them up there), main-thread CPU and wall time
   * since the previous tick, ms.
   */
  blocks: Array<{ atUs: number; mainCpuMs: number; wallMs: number }>;
}

/** Turns over this much main-thread CPU are listed in `ResumeReport.blocks`, ms (the goal). */
const BLOCK_MS = 50;

/** The runner has taken its first full read in (its early start, if any, is over): read from a private field, for this bench only. */
const fullReadIn = (runner: Runner): boolean => (runner as unknown as { poll: { early: unknown } }).poll.early === null;

const job = JSON.parse(process.env.BENCH_RESUME_JOB!) as ResumeJob;

/**
 * CPU time of this process's main thread, ms (Linux: the first field of
 * /proc/<pid>/task/<pid>/schedstat, in ns; see proc(5)); NaN elsewhere.
 */
function mainThreadCpuMs(): number {
  try {
    return Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return Number.NaN;
  }
}
/** Large containers: a longer deadline per read (a shared machine's server may take over 10 s to answer one reply). */
const deadline = job.tasks >= 50_000 ? { operationTimeoutMs: 60_000 } : {};
const connection = await mongoose.createConnection(job.uri).asPromise();
const { definition } = shaped('bench', 'flat', job.tasks);
const pollMs = job.pollMs === null ? {} : { pollMs: job.pollMs };

if (job.role === 'prepare') {
  const runner = await Runner.create({ connection, container: definition, concurrency: job.concurrency, ...pollMs, ...deadline });
  let done = 0;
  runner.on('task:succeeded', () => {
    if (++done === Math.floor(job.tasks / 2)) process.send!('half');
  });
  await runner.run();
  process.send!('finished');
} else {
  const findMs: number[] = [];
  let tasksFound = 0;
  const find = async () => {
    const t0 = performance.now();
    tasksFound = (await connection.collection('pts_tasks').find({ container: 'bench' }).toArray()).length;
    findMs.push(performance.now() - t0);
  };
  // One find before the resume and one after it: on a shared machine the
  // server's speed drifts, and the resume is compared with both.
  await find();
  (globalThis as { gc?: () => void }).gc?.();
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;
  const baselineHeapUsed = process.memoryUsage().heapUsed;
  let peakHeapUsed = baselineHeapUsed;
  let peakArrayBuffers = process.memoryUsage().arrayBuffers;
  let maxLoopGapMs = 0;
  let maxLoopCpuMs = 0;
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let maxLoopMainCpuMs = 0;
  const blocks: ResumeReport['blocks'] = [];
  let lastMain = mainThreadCpuMs();
  let runner: Runner | undefined;
  let fullReadMs = NaN;
  const ticker = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    const gap = now - last;
    maxLoopGapMs = Math.max(maxLoopGapMs, gap - 10);
    // CPU the process used between two ticks: on a busy machine a late tick
    // may only mean the process waited for a core; this is work done without a break.
    maxLoopCpuMs = Math.max(maxLoopCpuMs, (cpu.user + cpu.system) / 1000);
    last = now;
    lastCpu = process.cpuUsage();
    const main = mainThreadCpuMs();
    maxLoopMainCpuMs = Math.max(maxLoopMainCpuMs, main - lastMain);
    if (main - lastMain > BLOCK_MS && blocks.length < 100) blocks.push({ atUs: Number(process.hrtime.bigint() / 1000n), mainCpuMs: main - lastMain, wallMs: gap });
    lastMain = main;
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeapUsed = Math.max(peakHeapUsed, m.heapUsed);
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
    if (runner && Number.isNaN(fullReadMs) && fullReadIn(runner)) fullReadMs = now - t0;
  }, 10);
  const t0 = performance.now();
  runner = await Runner.create({ connection, container: definition, concurrency: job.concurrency, ...pollMs, ...deadline });
  const createMs = performance.now() - t0;
  let firstStartMs = NaN;
  const first = new Promise<void>((resolve) =>
    runner.on('task:started', () => {
      if (Number.isNaN(firstStartMs)) firstStartMs = performance.now() - t0;
      resolve();
    }),
  );
  const running = runner.run();
  await Promise.race([first, running]);
  // The whole container is still being read after the first start (a runner
  // starts tasks shown free before its full read lands): watch the loop until
  // that read has been taken in too, and 1 s more (at most 10 finds: the case
  // then reports it not taken in).
  const firstAt = performance.now();
  while (performance.now() - firstAt < 1000 || (Number.isNaN(fullReadMs) && performance.now() - t0 < 10 * findMs[0]!)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const tookIn = performance.now();
  while (performance.now() - tookIn < 1000) await new Promise((r) => setTimeout(r, 100));
  clearInterval(ticker);
  (globalThis as { gc?: () => void }).gc?.();
  const liveHeapUsed = process.memoryUsage().heapUsed;
  await runner.stop();
  await running.catch(() => undefined);
  await find();
  const report: ResumeReport = {
    findMs,
    tasksFound,
    createMs,
    firstStartMs,
    maxLoopGapMs,
    maxLoopCpuMs,
    maxLoopMainCpuMs,
    rssMB: process.memoryUsage().rss / 2 ** 20,
    fullReadMs,
    baselineRss,
    peakRss,
    peakHeapUsed,
    baselineHeapUsed,
    liveHeapUsed,
    peakArrayBuffers,
    blocks,
  };
  process.send!(report);
}
await connection.close();
process.exit(0);
