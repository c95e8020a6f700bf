/**
 * Shared plumbing of the chaos scenarios: spawning runner processes
 * (test/fixtures/chaos-runner.ts), waiting for them without hanging the
 * suite, reading the container, and reporting one summary line per scenario.
 */
import fs from 'node:fs';
import path from 'node:path';
import mongoose from 'mongoose';
import { expect } from 'vitest';
import { MongoStore, type ContainerSnapshot } from '../../../src/index.js';
import { makeTempDir, spawnTsChild, type TsChild } from '../../support/child.js';
import { shapeTasks } from '../../fixtures/chaos-shapes.js';
import { judge, logSignal, summaryLine, type ChaosCounts } from './check.js';

export { logSignal } from './check.js';

/** Environment of a runner child (see test/fixtures/chaos-runner.ts). */
export type RunnerEnv = Record<string, string>;

/** A scenario's log file and its base runner environment. */
export interface Scenario {
  name: string;
  log: string;
  dir: string;
  started: number;
  env: RunnerEnv;
  runners: TsChild[];
}

/** Creates the scenario's temp folder and side-effect log. */
export function scenario(name: string, env: RunnerEnv): Scenario {
  const dir = makeTempDir(`pts-chaos-${name}-`);
  const log = path.join(dir, 'effects.jsonl');
  return { name, log, dir, started: performance.now(), env: { LOG: log, ...env }, runners: [] };
}

/** Spawns a runner process with the scenario's env plus `extra`. */
export function spawnRunner(s: Scenario, label: string, extra: RunnerEnv = {}): TsChild {
  const child = spawnTsChild('test/fixtures/chaos-runner.ts', [], { ...s.env, RUNNER: label, ...extra }, { label: `${s.name}/${label}` });
  s.runners.push(child);
  return child;
}

/** SIGKILLs a runner and logs the kill time (for the overlap computation). */
export async function killRunner(s: Scenario, child: TsChild): Promise<void> {
  if (child.exitInfo) return;
  logSignal(s.log, child.pid, 'kill');
  await child.kill('SIGKILL');
}

/** Sends SIGSTOP or SIGCONT to a runner and logs it. */
export function freezeRunner(s: Scenario, child: TsChild, frozen: boolean): void {
  logSignal(s.log, child.pid, frozen ? 'stop' : 'cont');
  child.child.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
}

/**
 * How a runner ended: `done <status>`, `error ...`, `exit <code/signal>`, or
 * `hung` (killed after `timeoutMs` without exiting).
 */
export async function settle(s: Scenario, child: TsChild, timeoutMs: number): Promise<string> {
  try {
    await child.waitForExit(timeoutMs);
  } catch {
    await killRunner(s, child);
    return 'hung';
  }
  const done = child.lines.find((l) => l.startsWith('done ') || l.startsWith('error '));
  return done ?? `exit ${child.exitInfo?.signal ?? child.exitInfo?.code}`;
}

/** Kills every runner of the scenario still alive (logged, so their attempts end there). */
export async function killAll(s: Scenario): Promise<void> {
  for (const c of s.runners) {
    if (!c.exitInfo) {
      c.child.kill('SIGCONT');
      await killRunner(s, c);
    }
  }
}

/** Reads a container through a short-lived connection. */
export async function readContainer(uriWithDb: string, container: string): Promise<ContainerSnapshot | null> {
  const connection = await mongoose.createConnection(uriWithDb, { serverSelectionTimeoutMS: 15_000 }).asPromise();
  try {
    const store = await MongoStore.create(connection);
    return await store.loadSnapshot(container);
  } finally {
    await connection.close();
  }
}

/**
 * Judges the scenario, prints its summary line (stdout, and appended to
 * $PTS_CHAOS_SUMMARY when set), then asserts the five properties. A scenario
 * made of several containers passes one part per container (counts summed).
 */
export function report(
  s: Scenario,
  snapshot: ContainerSnapshot | null | Array<{ snapshot: ContainerSnapshot | null; inc: string }>,
  opts: { inc?: string; shape: string; extra?: Record<string, number | string> },
): ChaosCounts {
  const tasks = shapeTasks(opts.shape).map((t) => t.name);
  const parts = Array.isArray(snapshot) ? snapshot : [{ snapshot, inc: opts.inc ?? s.env.INC ?? '1' }];
  const counts = parts
    .map((p) => judge(s.log, p.snapshot, p.inc, tasks, { onlyInc: parts.length > 1 }))
    .reduce((a, b) => sumCounts(a, b));
  const line = summaryLine(s.name, counts, performance.now() - s.started, opts.extra);
  console.log(line);
  if (process.env.PTS_CHAOS_SUMMARY) fs.appendFileSync(process.env.PTS_CHAOS_SUMMARY, `${line}\n`);
  const why = `${line}\n${counts.details.join('\n')}\nlog: ${s.log}`;
  expect.soft(counts.startsAfterSuccess, why).toBe(0);
  expect.soft(counts.overlaps, why).toBe(0);
  expect.soft(counts.lost, why).toBe(0);
  expect.soft(counts.foreign, why).toBe(0);
  expect.soft(counts.successAsFailure, why).toBe(0);
  expect.soft(counts.statusMismatch, why).toBe(0);
  return counts;
}

function sumCounts(a: ChaosCounts, b: ChaosCounts): ChaosCounts {
  const out = { ...a };
  for (const k of Object.keys(a) as Array<keyof ChaosCounts>) {
    if (typeof a[k] === 'number') (out as Record<string, unknown>)[k] = (a[k] as number) + (b[k] as number);
  }
  out.status = `${a.status},${b.status}`;
  out.derived = `${a.derived},${b.derived}`;
  out.details = [...a.details, ...b.details].slice(0, 16);
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Deterministic pseudo-random numbers (mulberry32), so runs are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
