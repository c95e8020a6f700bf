/**
 * One runner process of the runners case (forked by runners.ts): creates (or
 * joins) a container of sleeping tasks, says `ready`, runs it on `go`, and
 * sends what it started (wall-clock spans, ms since the epoch) and the
 * commands its connection sent. BENCH_TRACE=1 prints every command and task
 * event with its time on stderr (where the time between rounds goes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import mongoose from 'mongoose';
import { defineContainer, Runner, type ContainerBuilder, type RunnerOptions } from '../../src/index.js';
import { CommandCounter } from './monitor.js';

export interface RunnersJob {
  uri: string;
  container: string;
  tasks: number;
  taskMs: number;
  concurrency: number;
  pollMs: number | null;
  /** Task option `group` of every task, and the runner's `groups` option. */
  group?: { name: string; limit: NonNullable<RunnerOptions['groups']>[string] };
  budgetS: number;
}

export interface RunnersReport {
  started: number;
  /** Claims this runner lost to another (`task:claim-lost`). */
  lostClaims: number;
  spans: Array<[number, number]>;
  commands: number;
  /** Commands by name (insert, delete, find...). */
  byName: Record<string, number>;
  /** Commands by name and collection, writes also by what they did (see CommandCounter). */
  byTarget: Record<string, number>;
  status: string;
  seconds: number;
  /** CPU time of this process (user + system) during its run, in ms. */
  cpuMs: number;
}

const job = JSON.parse(process.env.BENCH_RUNNERS_JOB!) as RunnersJob;
const connection = await mongoose.createConnection(job.uri, { monitorCommands: true }).asPromise();
const counter = new CommandCounter(connection);
const spans: Array<[number, number]> = [];
const c = defineContainer(job.container) as ContainerBuilder<any>;
const options = job.group ? { group: job.group.name } : {};
for (let i = 0; i < job.tasks; i++) {
  c.task(`t${i}`, options, async () => {
    const span: [number, number] = [Date.now(), 0];
    await sleep(job.taskMs);
    span[1] = Date.now();
    spans.push(span);
  });
}
const runner = await Runner.create({
  connection,
  container: c,
  concurrency: job.concurrency,
  ...(job.group ? { groups: { [job.group.name]: job.group.limit } } : {}),
  ...(job.pollMs === null ? {} : { pollMs: job.pollMs }),
});
let started = 0;
runner.on('task:started', () => void started++);
let lostClaims = 0;
runner.on('task:claim-lost', () => void lostClaims++);
runner.on('runner:error', (e) => console.error(`  runner ${process.pid}: ${e.context}: ${e.error.message}`));
if (process.env.BENCH_TRACE) {
  // Every command sent and answered (with its duration) and the task events, on stderr, at ms since the epoch mod 1e6.
  const client = connection.getClient();
  const at = () => Date.now() % 1e6;
  const sent = new Map<number, string>();
  client.on('commandStarted', (e) => {
    const coll = (e.command as Record<string, unknown>)[e.commandName];
    const n = Array.isArray((e.command as any).documents) ? (e.command as any).documents.length : '';
    sent.set(e.requestId, `${e.commandName} ${coll} ${n}`);
    console.error(`${process.pid} +${at()} > ${e.requestId} ${e.commandName} ${coll} ${n}`);
  });
  client.on('commandSucceeded', (e) => console.error(`${process.pid} +${at()} < ${e.requestId} ${e.duration}ms ${sent.get(e.requestId)}`));
  for (const ev of ['task:started', 'task:succeeded', 'task:claim-lost'] as const) {
    runner.on(ev, (e) => console.error(`${process.pid} +${at()} ${ev} ${(e as { task: string }).task}`));
  }
}
if (process.env.BENCH_DEBUG) {
  const t0 = Date.now();
  for (const ev of ['task:started', 'task:succeeded', 'task:released', 'task:claim-lost'] as const) {
    runner.on(ev, (e) => console.error(`${process.pid} +${Date.now() % 1e6} ${ev} ${(e as { task: string }).task}`));
  }
}
process.send!('ready');
await new Promise<void>((resolve) => process.once('message', () => resolve()));
const c0 = counter.snapshot();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const stopTimer = setTimeout(() => void runner.stop(), job.budgetS * 1000);
const result = await runner.run();
clearTimeout(stopTimer);
const report: RunnersReport = {
  started,
  lostClaims,
  spans,
  commands: counter.since(c0).commands,
  byName: counter.since(c0).byName,
  byTarget: counter.since(c0).byTarget,
  status: result.status,
  seconds: (performance.now() - t0) / 1000,
  cpuMs: ((c) => c.user + c.system)(process.cpuUsage(cpu0)) / 1000,
};
process.send!(report);
await connection.close();
process.exit(0);
