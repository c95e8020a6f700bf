/**
 * The memory case's runner process (forked by memory.ts): builds a flat
 * no-op container, then samples its own RSS every 100 ms through
 * Runner.create and runner.run(), and sends the figures to its parent.
 */
import mongoose from 'mongoose';
import { Runner } from '../../src/index.js';
import { shaped } from './containers.js';
import { runWithBudget } from './harness.js';

export interface MemoryJob {
  uri: string;
  tasks: number;
  concurrency: number;
  pollMs: number | null;
  budgetS: number;
}

export interface MemoryReport {
  tasks: number;
  buildSeconds: number;
  baselineRss: number;
  peakRss: number;
  peakHeapUsed: number;
  samples: number;
  createSeconds: number;
  run: Awaited<ReturnType<typeof runWithBudget>>;
}

const job = JSON.parse(process.env.BENCH_MEMORY_JOB!) as MemoryJob;
const connection = await mongoose.createConnection(job.uri).asPromise();
const { definition, buildSeconds } = shaped('bench', 'flat', job.tasks);
(globalThis as { gc?: () => void }).gc?.();
const baselineRss = process.memoryUsage().rss;
let peakRss = baselineRss;
let peakHeapUsed = process.memoryUsage().heapUsed;
let samples = 0;
const sample = () => {
  const m = process.memoryUsage();
  samples++;
  peakRss = Math.max(peakRss, m.rss);
  peakHeapUsed = Math.max(peakHeapUsed, m.heapUsed);
};
const sampler = setInterval(sample, 100);
const t0 = performance.now();
const runner = await Runner.create({
  connection,
  container: definition,
  concurrency: job.concurrency,
  ...(job.pollMs === null ? {} : { pollMs: job.pollMs }),
});
const createSeconds = (performance.now() - t0) / 1000;
sample();
const run = await runWithBudget(runner, job.tasks, job.budgetS, `memory-${job.tasks}`);
sample();
clearInterval(sampler);
const report: MemoryReport = { tasks: job.tasks, buildSeconds, baselineRss, peakRss, peakHeapUsed, samples, createSeconds, run };
process.send!(report);
await connection.dropDatabase().catch(() => undefined);
await connection.close();
process.exit(0);
