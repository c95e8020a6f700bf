/**
 * The create case's process (forked by create.ts): declares a flat no-op
 * container of `tasks` tasks, then samples its own RSS and heap every 50 ms
 * through `Runner.create` (the container created: graph pages, task
 * documents, the runner's picture), and sends the figures to its parent.
 * Nothing runs.
 */
import mongoose from 'mongoose';
import { Runner } from '../../src/index.js';
import { shaped } from './containers.js';

export interface CreateJob {
  uri: string;
  tasks: number;
}

export interface CreateReport {
  tasks: number;
  buildSeconds: number;
  createSeconds: number;
  /** Bytes, after the definition was built and garbage collected. */
  baselineRss: number;
  baselineHeapUsed: number;
  peakRss: number;
  peakHeapUsed: number;
  /** Highest heap used right after a full garbage collection, forced every {@link LIVE_EVERY_MS} through `Runner.create`, bytes: the most it held live at once. */
  peakLiveHeap: number;
  /** Heap used right after `Runner.create`, garbage collected, the runner (its picture) still held, bytes: what the create left behind. */
  heapAfterGc: number;
  /** Task documents and graph pages found in the database afterwards. */
  storedTasks: number;
  graphPages: number;
}

/** Interval of the forced collections that measure the heap held live, ms. */
const LIVE_EVERY_MS = 2000;

const job = JSON.parse(process.env.BENCH_CREATE_JOB!) as CreateJob;
const connection = await mongoose.createConnection(job.uri).asPromise();
const { definition, buildSeconds } = shaped('bench-create', 'flat', job.tasks);
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const base = process.memoryUsage();
let peakRss = base.rss;
let peakHeapUsed = base.heapUsed;
const sample = () => {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeapUsed = Math.max(peakHeapUsed, m.heapUsed);
};
const sampler = setInterval(sample, 50);
// What the create holds live (garbage left aside): a full collection every
// LIVE_EVERY_MS (each costs tens to hundreds of ms: the time includes them).
let peakLiveHeap = base.heapUsed;
const live = setInterval(() => {
  gc?.();
  peakLiveHeap = Math.max(peakLiveHeap, process.memoryUsage().heapUsed);
}, LIVE_EVERY_MS);
const t0 = performance.now();
const runner = await Runner.create({ connection, container: definition });
const createSeconds = (performance.now() - t0) / 1000;
sample();
clearInterval(sampler);
clearInterval(live);
gc?.();
const heapAfterGc = process.memoryUsage().heapUsed;
void runner;
const db = connection.db!;
const report: CreateReport = {
  tasks: job.tasks,
  buildSeconds,
  createSeconds,
  baselineRss: base.rss,
  baselineHeapUsed: base.heapUsed,
  peakRss,
  peakHeapUsed,
  heapAfterGc,
  peakLiveHeap,
  storedTasks: await db.collection('pts_tasks').estimatedDocumentCount(),
  graphPages: await db.collection('pts_graph').estimatedDocumentCount(),
};
process.send!(report);
await connection.dropDatabase().catch(() => undefined);
await connection.close();
process.exit(0);
