/**
 * A task's ETA on the container page comes from its own progress rate, and
 * only once there is a rate to speak of: a fraction reported at the start
 * (the screenshot's "25 %" at once) gives no ETA rather than "0 s".
 */
import { describe, expect, it } from 'vitest';
import { TASK_ETA_MIN_ELAPSED_MS, taskEta } from '../src/observe/dashboard/data.js';

const at = (ms: number) => new Date(Date.UTC(2026, 11, 6, 12) + ms);
const running = (o: { startedMs: number; progress: number; startProgress?: number; progressMs: number | null }) => ({
  status: 'running' as const,
  startedAt: at(o.startedMs),
  progress: o.progress,
  startProgress: o.startProgress ?? 0,
  progressAt: o.progressMs === null ? null : at(o.progressMs),
});

describe('task ETA', () => {
  it('is unknown for a fraction reported at once, or for under 1 % gained', () => {
    expect(taskEta(running({ startedMs: 0, progress: 0.25, progressMs: 5 }), at(10))).toBeNull();
    expect(taskEta(running({ startedMs: 0, progress: 0.25, progressMs: TASK_ETA_MIN_ELAPSED_MS - 1 }), at(60_000))).toBeNull();
    expect(taskEta(running({ startedMs: 0, progress: 0.005, progressMs: 60_000 }), at(60_000))).toBeNull();
  });

  it('extrapolates the rate since the attempt started, from where this attempt began', () => {
    // 25 % in 10 s: 75 % left takes 30 s.
    expect(taskEta(running({ startedMs: 0, progress: 0.25, progressMs: 10_000 }), at(10_000))).toBe(30_000);
    // A resumed attempt that started at 50 % and reached 60 % in 10 s: 40 % left takes 40 s.
    expect(taskEta(running({ startedMs: 0, progress: 0.6, startProgress: 0.5, progressMs: 10_000 }), at(10_000))).toBe(40_000);
  });

  it('is null for a task that is not running', () => {
    expect(taskEta({ ...running({ startedMs: 0, progress: 0.5, progressMs: 10_000 }), status: 'succeeded' }, at(10_000))).toBeNull();
  });
});
