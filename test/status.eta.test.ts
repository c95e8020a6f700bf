/**
 * The ETA from synthetic transition logs (no timing of real runs): a long
 * chain beside many short tasks, and long tasks followed by many short ones.
 * The old estimator (mean duration x tasks left / tasks running) is far off
 * both ways; the new one (critical path vs work / observed concurrency) is
 * within the stated tolerance of the true remaining time.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS } from '../src/definition/options.js';
import { summarizeContainer } from '../src/index.js';
import { foldTransitions } from '../src/store/fold.js';
import type { Transition } from '../src/store/transition.js';
import type { ContainerSnapshot, TaskSnapshot } from '../src/store/types.js';
import { estimateRemaining } from '../src/status/eta.js';

/** The new estimate must be within 10 % of the true remaining time. */
const TOLERANCE = 0.1;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000);

interface Plan {
  name: string;
  dependsOn?: string[];
  /** Seconds after T0. */
  start?: number;
  end?: number;
  progress?: number;
}

function task(p: Plan): TaskSnapshot {
  const log: Transition[] = [];
  const base = { container: 'c', task: p.name };
  if (p.start !== undefined) {
    log.push({ ...base, token: 1, kind: 'claimed', at: at(p.start), runnerId: 'r', attempt: 1, leaseMs: 30_000, heartbeatMs: 10_000,
      leaseUntil: at(1e6), progress: p.progress ?? 0, startProgress: 0 });
  }
  if (p.end !== undefined) log.push({ ...base, token: 2, kind: 'succeeded', at: at(p.end), output: null });
  return {
    record: { container: 'c', name: p.name, dependsOn: p.dependsOn ?? [], handler: p.name, input: null,
      options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null, order: 0, createdAt: at(0) },
    state: foldTransitions(log),
  };
}

function snapshot(tasks: Plan[], nowS: number): ContainerSnapshot {
  return {
    container: { name: 'c', status: 'running', failFast: true, definition: null, createdAt: at(0), updatedAt: at(0), finishedAt: null, cancelRequestedAt: null },
    tasks: tasks.map(task),
    // Time is synthetic: readAt is "now" for the estimator; the leases run far past it.
    readAt: at(nowS),
  };
}

/** The estimator this replaces: mean finished duration x tasks left / tasks running. */
function oldEstimateMs(s: ContainerSnapshot): number {
  const durations = s.tasks.filter((t) => t.state.status === 'succeeded').map((t) => t.state.durationMs!);
  const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
  const units = s.tasks.reduce((u, t) => u + (t.state.status === 'succeeded' ? 1 : t.state.status === 'running' ? t.state.progress : 0), 0);
  const running = s.tasks.filter((t) => t.state.status === 'running').length;
  return ((s.tasks.length - units) * mean) / Math.max(1, running);
}

function expectWithin(actualMs: number, trueMs: number): void {
  expect(Math.abs(actualMs - trueMs) / trueMs).toBeLessThanOrEqual(TOLERANCE);
}

describe('ETA', () => {
  it('follows the critical path: a 5 x 60 s chain beside 40 tasks of 1 s, 4 at a time', () => {
    // chain-1 ran 0-60 s while the thumbs ran three at a time beside it; chain-2 is half done at 90 s.
    const plans: Plan[] = [
      { name: 'chain-1', start: 0, end: 60 },
      { name: 'chain-2', dependsOn: ['chain-1'], start: 60, progress: 0.5 },
      { name: 'chain-3', dependsOn: ['chain-2'] },
      { name: 'chain-4', dependsOn: ['chain-3'] },
      { name: 'chain-5', dependsOn: ['chain-4'] },
    ];
    for (let i = 0; i < 40; i++) plans.push({ name: `thumb-${i}`, start: Math.floor(i / 3), end: Math.floor(i / 3) + 1 });
    const s = snapshot(plans, 90);
    const trueMs = 30_000 + 3 * 60_000;

    expect(oldEstimateMs(s)).toBeLessThan(trueMs / 20); // about 8.5 s
    const estimate = estimateRemaining(s)!;
    expect(estimate).toMatchObject({ concurrency: 4, criticalPathMs: trueMs });
    expectWithin(estimate.etaMs, trueMs);
    expectWithin(summarizeContainer(s).etaMs!, trueMs);
  });

  it('spreads the work over the observed concurrency: 40 tasks of 1 s after 4 tasks of 100 s', () => {
    const plans: Plan[] = [];
    const loads = ['load-a', 'load-b', 'load-c', 'load-d'];
    for (const name of loads) plans.push({ name, start: 0, end: 100 });
    // Four thumbs are half done at 100.5 s; 36 wait.
    for (let i = 0; i < 40; i++) {
      plans.push({ name: `thumb-${i}`, dependsOn: loads, ...(i < 4 ? { start: 100, progress: 0.5 } : {}) });
    }
    const s = snapshot(plans, 100.5);
    const trueMs = 500 + 9 * 1000;

    expect(oldEstimateMs(s)).toBeGreaterThan(trueMs * 50); // about 950 s
    const estimate = estimateRemaining(s)!;
    expect(estimate.concurrency).toBe(4);
    expectWithin(estimate.etaMs, trueMs);
    expectWithin(summarizeContainer(s).etaMs!, trueMs);
  });

  it('is unknown before anything finished or reported progress, and 0 when nothing is left', () => {
    expect(estimateRemaining(snapshot([{ name: 'a', start: 0 }, { name: 'b', dependsOn: ['a'] }], 5))).toBeNull();
    expect(estimateRemaining(snapshot([{ name: 'a', start: 0, end: 3 }], 5))).toMatchObject({ etaMs: 0 });
  });
});
