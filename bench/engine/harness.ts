/**
 * What every case shares: one server, a fresh database per case on a
 * monitored connection, and running a runner under a wall-time budget.
 */
import type { ChildProcess } from 'node:child_process';
import mongoose, { type Connection } from 'mongoose';
import type { Runner } from '../../src/index.js';
import { CommandCounter } from './monitor.js';

export interface BenchOptions {
  sizes: number[];
  quick: boolean;
  only: Set<string> | null;
  /** Overrides every case's wall-time budget, in seconds. */
  budgetS: number | null;
  concurrency: number;
  /** Passed to runners when set; otherwise the engine's default is used. */
  pollMs: number | null;
  /** Sizes of the resume case's container, one case each. */
  resumeSizes: number[];
  memorySize: number;
  /** Sizes of the create case, smallest first. */
  createSizes: number[];
  slotTasks: number;
  /** Rounds of 1, 2 and 4 runners in turn in the runners case; medians are reported. */
  runnersReps: number;
  diamonds: number;
}

export interface Ctx {
  serverUri: string;
  serverKind: string;
  opts: BenchOptions;
}

/** The documented default of `RunnerOptions.pollMs` (src/engine/runner-options.ts). */
export const DEFAULT_POLL_MS = 1000;

export function pollMsOf(ctx: Ctx): number {
  return ctx.opts.pollMs ?? DEFAULT_POLL_MS;
}

/** Runner options every case uses: concurrency 16, defaults otherwise. */
export function runnerOptions(ctx: Ctx): { concurrency: number; pollMs?: number } {
  return ctx.opts.pollMs === null ? { concurrency: ctx.opts.concurrency } : { concurrency: ctx.opts.concurrency, pollMs: ctx.opts.pollMs };
}

/** Default budget by size: 60 s up to 1k tasks, 120 s up to 10k, 300 s above. */
export function budgetFor(ctx: Ctx, tasks: number): number {
  if (ctx.opts.budgetS !== null) return ctx.opts.budgetS;
  return tasks <= 1000 ? 60 : tasks <= 10_000 ? 120 : 300;
}

export function uriFor(serverUri: string, db: string): string {
  const url = new URL(serverUri);
  url.pathname = `/${db}`;
  return url.toString();
}

export interface Db {
  name: string;
  uri: string;
  connection: Connection;
  counter: CommandCounter;
  /** Drops the database and closes the connection. */
  close(): Promise<void>;
}

/** A fresh database `pts_bench_<case>_<now>` on a connection with command monitoring. */
export async function openDb(ctx: Ctx, caseName: string): Promise<Db> {
  const name = `pts_bench_${caseName.replace(/[^a-zA-Z0-9]/g, '_')}_${Date.now()}`;
  const uri = uriFor(ctx.serverUri, name);
  const connection = await mongoose.createConnection(uri, { monitorCommands: true }).asPromise();
  const counter = new CommandCounter(connection);
  return {
    name,
    uri,
    connection,
    counter,
    async close() {
      await connection.dropDatabase().catch(() => undefined);
      await connection.close();
    },
  };
}

export interface BudgetedRun {
  /** The container finished (any status) within the budget. */
  finished: boolean;
  status: string;
  /** Tasks that succeeded during this run. */
  succeeded: number;
  failed: number;
  seconds: number;
  budgetS: number;
}

/**
 * `runner.run()`, stopped with `runner.stop()` once `budgetS` has passed.
 * Prints a progress line every 15 s so a long case shows it is alive.
 */
export async function runWithBudget(runner: Runner, total: number, budgetS: number, label: string): Promise<BudgetedRun> {
  let succeeded = 0;
  let failed = 0;
  runner.on('task:succeeded', () => void succeeded++);
  runner.on('task:failed', () => void failed++);
  let overBudget = false;
  const t0 = performance.now();
  const stopTimer = setTimeout(() => {
    overBudget = true;
    console.error(`  ${label}: budget of ${budgetS} s exceeded at ${succeeded}/${total} tasks; stopping the runner`);
    void runner.stop();
  }, budgetS * 1000);
  const progress = setInterval(() => {
    console.error(`  ${label}: ${succeeded}/${total} tasks after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }, 15_000);
  try {
    const result = await runner.run();
    const seconds = (performance.now() - t0) / 1000;
    return { finished: !overBudget && result.status !== 'stopped', status: result.status, succeeded, failed, seconds, budgetS };
  } finally {
    clearTimeout(stopTimer);
    clearInterval(progress);
  }
}

export function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}

/** The last message a forked child sent before it exited (its report); rejects when it exited without one. */
export function reportOf<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let got: T | undefined;
    child.on('message', (m) => (got = m as T));
    child.on('error', reject);
    child.on('exit', (code) => (got ? resolve(got) : reject(new Error(`${what} exited ${code} without a report`))));
  });
}
