import { lostRunner } from '../store/lease-health.js';
import type { ContainerSnapshot, TaskSnapshot, TaskState } from '../store/types.js';

/** How the remaining time of a container was estimated; all durations in ms. */
export interface EtaEstimate {
  /** The estimate: `max(criticalPathMs, workMs / concurrency)`, rounded. */
  etaMs: number;
  /** The longest chain of what is left: waits (retry backoff, a lost runner's lease) plus work, along dependencies. */
  criticalPathMs: number;
  /** The sum of the work left in every task that will still run. */
  workMs: number;
  /** The most attempts seen running at once (at least 1). */
  concurrency: number;
}

/** Below this much progress within an attempt, its rate says too little to extrapolate from. */
const MIN_PROGRESS_FOR_RATE = 0.01;
/** A progress report this recent (as a share of the attempt's time so far) measures the rate. */
const FRESH_REPORT_SHARE = 0.1;
/** A task running past its estimate is assumed to need at least this share of its remaining work. */
const OVERRUN_FLOOR = 0.1;

/**
 * Estimates how long a running container still needs, from the snapshot
 * alone (so any process computes the same), with `snapshot.readAt` as now.
 *
 * 1. **Duration of each task.** A running attempt with progress extrapolates
 *    its own rate: elapsed / (progress − progress it started from). Other
 *    tasks take the mean of the samples (finished tasks' durations scaled to a
 *    whole run, and running tasks' extrapolations) of the first of these that
 *    has any: tasks with the same handler (shared by dynamic tasks), the same
 *    name family (the name up to its last `-`, `_`, `.` or `:`, e.g.
 *    `download-a`, `download-b`), the same concurrency group (tasks in no
 *    group count as one group), all tasks. A running attempt's rate is
 *    measured up to its last progress report while that report is fresh.
 * 2. **Work left per task.** A running task: the rest of its attempt. A
 *    pending task: its duration minus what its checkpoint already covers,
 *    after its retry time. A task whose runner is lost: the wait until its
 *    lease expires (judged as in status, see `lostRunner`), then the work
 *    after its checkpoint. Tasks that will be skipped (a dependency failed)
 *    need nothing.
 * 3. **Critical path**: the longest chain of waits and work along the
 *    dependencies of what is left. **Work / concurrency**: all work left,
 *    spread over the peak number of attempts observed running at once.
 *    Neither can be beaten, so the estimate is the larger of the two (a list
 *    schedule may need up to their sum when both are large).
 *
 * Returns `{ etaMs: 0 }` when nothing is left, and null while some task left
 * has no estimate (no task has finished or reported progress yet).
 */
export function estimateRemaining(snapshot: ContainerSnapshot): EtaEstimate | null {
  const now = snapshot.readAt.getTime();
  const byName = new Map(snapshot.tasks.map((t) => [t.record.name, t]));
  const serverNow = snapshot.serverReadAt ?? null;
  const samples = collectSamples(snapshot.tasks, now, serverNow);
  const concurrency = peakConcurrency(snapshot.tasks, now, serverNow);

  const finish = new Map<string, number | null>();
  let workMs = 0;
  let unknown = false;
  /** Time from now until the task ends; null when it will never run (skipped). */
  const finishOf = (t: TaskSnapshot, visiting: Set<string>): number | null => {
    const name = t.record.name;
    if (finish.has(name)) return finish.get(name)!;
    const { status } = t.state;
    let result: number | null;
    if (status === 'succeeded') result = 0;
    else if (status !== 'pending' && status !== 'running') result = null;
    else if (visiting.has(name)) result = 0; // a cycle cannot be declared; never loop on bad data
    else {
      visiting.add(name);
      let start = 0;
      let doomed = false;
      for (const dep of t.record.dependsOn) {
        const d = byName.get(dep);
        if (!d) continue;
        const f = finishOf(d, visiting);
        if (f === null) doomed = true;
        else start = Math.max(start, f);
      }
      visiting.delete(name);
      if (doomed && status === 'pending') result = null;
      else {
        const left = workLeft(t, now, serverNow, samples);
        if (left === null) {
          unknown = true;
          result = start;
        } else {
          workMs += left.work;
          result = Math.max(start, left.wait) + left.work;
        }
      }
    }
    finish.set(name, result);
    return result;
  };

  let criticalPathMs = 0;
  for (const t of snapshot.tasks) criticalPathMs = Math.max(criticalPathMs, finishOf(t, new Set()) ?? 0);
  if (unknown) return null;
  const etaMs = Math.round(Math.max(criticalPathMs, workMs / concurrency));
  return { etaMs, criticalPathMs: Math.round(criticalPathMs), workMs: Math.round(workMs), concurrency };
}

/** Whole-task durations observed so far, by similarity key. */
type Samples = Map<string, number[]>;

function keysOf(t: TaskSnapshot): string[] {
  const { name, handler, options } = t.record;
  const keys: string[] = [];
  if (handler !== name) keys.push(`handler:${handler}`);
  const cut = Math.max(name.lastIndexOf('-'), name.lastIndexOf('_'), name.lastIndexOf('.'), name.lastIndexOf(':'));
  if (cut > 0) keys.push(`family:${name.slice(0, cut)}`);
  // Tasks outside any group count as one kind too: groups hold the heavy work.
  keys.push(`group:${options?.group ?? ''}`);
  keys.push('all');
  return keys;
}

/**
 * A running attempt's own rate, or null: `perUnit` is its whole-task duration
 * extrapolated from (progress − start progress) over the time it took, and
 * `left` the time it still needs. The time taken runs to its last progress
 * report while that report is fresh (at least a tenth of the attempt's
 * time), so throttled progress writes do not look like slowness; a staler
 * report may mean the task stalled, so the time runs to now. A lost runner's
 * attempt is measured up to its last report (or heartbeat).
 */
function ownRate(s: TaskState, now: number, serverNow: Date | null): { perUnit: number; left: number } | null {
  if (s.status !== 'running' || !s.startedAt) return null;
  const start = s.startedAt.getTime();
  const lost = lostRunner(s, new Date(now), serverNow);
  const reportAt = s.progressAt?.getTime();
  let until: number | undefined = now;
  if (lost) until = reportAt ?? lost.lastHeartbeatAt?.getTime();
  else if (reportAt !== undefined && reportAt - start >= FRESH_REPORT_SHARE * (now - start)) until = reportAt;
  if (until === undefined) return null;
  const done = s.progress - s.startProgress;
  const elapsed = until - start;
  if (done < MIN_PROGRESS_FOR_RATE || elapsed <= 0) return null;
  const perUnit = elapsed / done;
  const sinceReport = lost ? 0 : now - until;
  return { perUnit, left: Math.max(perUnit * (1 - s.progress) - sinceReport, OVERRUN_FLOOR * perUnit * (1 - s.progress)) };
}

function collectSamples(tasks: readonly TaskSnapshot[], now: number, serverNow: Date | null): Samples {
  const samples: Samples = new Map();
  for (const t of tasks) {
    const s = t.state;
    let whole: number | null = null;
    if (s.status === 'succeeded' && s.durationMs !== null && 1 - s.startProgress >= MIN_PROGRESS_FOR_RATE) {
      whole = s.durationMs / (1 - s.startProgress);
    } else {
      whole = ownRate(s, now, serverNow)?.perUnit ?? null;
    }
    if (whole === null) continue;
    for (const key of keysOf(t)) {
      const list = samples.get(key);
      if (list) list.push(whole);
      else samples.set(key, [whole]);
    }
  }
  return samples;
}

function estimatedDuration(t: TaskSnapshot, samples: Samples): number | null {
  for (const key of keysOf(t)) {
    const list = samples.get(key);
    if (list && list.length > 0) return list.reduce((a, b) => a + b, 0) / list.length;
  }
  return null;
}

/** A task's wait before it can work again, and the work it has left; null when unknown. */
function workLeft(t: TaskSnapshot, now: number, serverNow: Date | null, samples: Samples): { wait: number; work: number } | null {
  const s = t.state;
  const resumeFrom = s.checkpoint === undefined || s.checkpoint === null ? 0 : s.checkpointProgress;
  if (s.status === 'running') {
    const lost = lostRunner(s, new Date(now), serverNow);
    const rate = ownRate(s, now, serverNow);
    const full = rate?.perUnit ?? estimatedDuration(t, samples);
    if (lost) return full === null ? null : { wait: lost.expiresInMs, work: full * (1 - resumeFrom) };
    if (rate) return { wait: 0, work: rate.left };
    if (full === null) return null;
    const elapsed = s.startedAt ? now - s.startedAt.getTime() : 0;
    return { wait: 0, work: Math.max(full * (1 - s.startProgress) - elapsed, OVERRUN_FLOOR * full * (1 - s.progress)) };
  }
  const full = estimatedDuration(t, samples);
  if (full === null) return null;
  return { wait: s.notBefore ? Math.max(0, s.notBefore.getTime() - now) : 0, work: full * (1 - resumeFrom) };
}

/** The most attempts that ran at once, from each task's current or last attempt (at least 1). */
function peakConcurrency(tasks: readonly TaskSnapshot[], now: number, serverNow: Date | null): number {
  const edges: Array<[number, number]> = [];
  for (const { state: s } of tasks) {
    if (!s.startedAt) continue;
    const lost = lostRunner(s, new Date(now), serverNow);
    const end = s.status === 'running' ? (lost?.lastHeartbeatAt?.getTime() ?? now) : (s.endedAt?.getTime() ?? now);
    edges.push([s.startedAt.getTime(), 1], [Math.max(end, s.startedAt.getTime() + 1), -1]);
  }
  // Ends sort before starts at the same instant: back-to-back attempts do not overlap.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let peak = 1;
  for (const [, delta] of edges) {
    running += delta;
    peak = Math.max(peak, running);
  }
  return peak;
}
