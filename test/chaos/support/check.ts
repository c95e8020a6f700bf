/**
 * The chaos suite's judge: reads the side-effect log written by the task
 * handlers (test/fixtures/chaos-runner.ts) and by the test itself (process
 * kills, stops and continues), plus the container as stored, and counts
 * violations of the five properties every scenario must keep:
 *
 *  - startsAfterSuccess: a task started after its success was recorded (the
 *    runner's `task:succeeded` event, or the end of the handler of the
 *    attempt the store shows as the successful one, whichever came first);
 *  - overlaps: two attempts of one task executing at the same time (time a
 *    process spent SIGSTOPped does not count as executing; a SIGKILLed
 *    attempt executed until the kill);
 *  - lost / foreign: a task not succeeded at the end, or without the output
 *    its own incarnation produced, or a handler that received a dependency
 *    output of another incarnation;
 *  - successAsFailure: an attempt whose handler returned normally but whose
 *    outcome was stored as a failure;
 *  - statusMismatch: the container's stored status differs from the one its
 *    tasks imply.
 *
 * Times are monotonic milliseconds (CLOCK_MONOTONIC, shared by all processes
 * of the machine), so clock skew injected into a runner does not affect them.
 */
import { appendJsonl, readJsonl } from '../../support/side-effects.js';
import type { ContainerSnapshot } from '../../../src/index.js';
import { expectedOutput, monoMs } from '../../fixtures/chaos-shapes.js';

/** One line of the side-effect log. */
export interface ChaosRecord {
  ev: string;
  pid: number;
  runner?: string;
  inc?: string;
  t: number;
  task?: string;
  attempt?: number;
  output?: string;
  dep?: string;
  what?: 'kill' | 'stop' | 'cont';
}

/** Logs a signal the test sent to a process, for the overlap computation. */
export function logSignal(log: string, pid: number, what: 'kill' | 'stop' | 'cont'): void {
  appendJsonl(log, { ev: 'proc', what, pid, t: monoMs() });
}

/** Counts of one scenario; the five properties first. */
export interface ChaosCounts {
  startsAfterSuccess: number;
  overlaps: number;
  lost: number;
  foreign: number;
  successAsFailure: number;
  statusMismatch: number;
  /** Information, not asserted. */
  tasks: number;
  starts: number;
  attempts: number;
  successEvents: number;
  storedErrors: number;
  leaseLost: number;
  aborted: number;
  /** Starts after another attempt's handler had returned normally (its success did not stick: killed, fenced, or a write lost). */
  rerunsAfterEnd: number;
  status: string;
  derived: string;
  /** Examples of violations, for the failure message. */
  details: string[];
}

type Interval = [number, number];

function subtract(iv: Interval, holes: Interval[]): Interval[] {
  let parts: Interval[] = [iv];
  for (const [hs, he] of holes) {
    const next: Interval[] = [];
    for (const [s, e] of parts) {
      if (he <= s || hs >= e) next.push([s, e]);
      else {
        if (hs > s) next.push([s, hs]);
        if (he < e) next.push([he, e]);
      }
    }
    parts = next;
  }
  return parts;
}

function intersects(a: Interval[], b: Interval[]): boolean {
  return a.some(([as, ae]) => b.some(([bs, be]) => as < be && bs < ae));
}

/** The status a container's tasks imply (the engine's own rules: fail-fast aside, any failure fails it). */
export function derivedStatus(snapshot: ContainerSnapshot): string {
  const statuses = snapshot.tasks.map((t) => t.state.status);
  const declared = snapshot.container.definition?.length ?? 0;
  if (statuses.some((s) => s === 'pending' || s === 'running') || snapshot.tasks.length < declared) {
    return snapshot.container.cancelRequestedAt ? 'cancelling' : 'running';
  }
  if (statuses.every((s) => s === 'succeeded')) return 'succeeded';
  if (snapshot.container.cancelRequestedAt) return 'cancelled';
  return 'failed';
}

/**
 * Judges one scenario. `inc` is the incarnation whose container `snapshot`
 * shows; `expectedTasks` the task names it must hold, all succeeded. With
 * `onlyInc`, records of other incarnations are ignored (one log shared by
 * several containers, each its own incarnation).
 */
export function judge(
  logFile: string,
  snapshot: ContainerSnapshot | null,
  inc: string,
  expectedTasks: string[],
  opts: { onlyInc?: boolean } = {},
): ChaosCounts {
  const records = readJsonl<ChaosRecord>(logFile).filter((r) => !opts.onlyInc || r.ev === 'proc' || r.inc === inc);
  const details: string[] = [];
  const note = (s: string) => {
    if (details.length < 12) details.push(s);
  };
  const procs = records.filter((r) => r.ev === 'proc');
  const killAt = new Map<number, number>();
  const frozen = new Map<number, Interval[]>();
  const openStop = new Map<number, number>();
  for (const p of procs) {
    if (p.what === 'kill' && !killAt.has(p.pid)) killAt.set(p.pid, p.t);
    if (p.what === 'stop') openStop.set(p.pid, p.t);
    if (p.what === 'cont' && openStop.has(p.pid)) {
      frozen.set(p.pid, [...(frozen.get(p.pid) ?? []), [openStop.get(p.pid)!, p.t]]);
      openStop.delete(p.pid);
    }
  }
  for (const [pid, s] of openStop) frozen.set(pid, [...(frozen.get(pid) ?? []), [s, Number.POSITIVE_INFINITY]]);

  // Attempts: (inc, task, pid, attempt) -> records.
  const attempts = new Map<string, ChaosRecord[]>();
  const successAt = new Map<string, number>();
  let successEvents = 0;
  let leaseLost = 0;
  let aborted = 0;
  let foreign = 0;
  for (const r of records) {
    if (r.ev === 'succeeded') {
      successEvents++;
      const key = `${r.inc}/${r.task}`;
      successAt.set(key, Math.min(successAt.get(key) ?? Number.POSITIVE_INFINITY, r.t));
    }
    if (r.ev === 'lease-lost') leaseLost++;
    if (r.ev === 'aborted') aborted++;
    if (r.ev === 'bad-input') {
      foreign++;
      note(`foreign input: ${r.inc}/${r.task} attempt ${r.attempt} (pid ${r.pid}) got ${JSON.stringify((r as { got?: unknown }).got)} from ${r.dep}`);
    }
    if (['start', 'step', 'end', 'fail', 'aborted'].includes(r.ev)) {
      const key = `${r.inc}/${r.task}/${r.pid}/${r.attempt}`;
      attempts.set(key, [...(attempts.get(key) ?? []), r]);
    }
  }

  // A success whose event was never logged (its runner was killed right
  // after the write) still counts from the end of the attempt that the store
  // recorded as the successful one.
  for (const t of snapshot?.tasks ?? []) {
    if (t.state.status !== 'succeeded') continue;
    const end = records.find((r) => r.ev === 'end' && r.inc === inc && r.task === t.record.name && r.attempt === t.state.attempt);
    if (!end) continue;
    const key = `${inc}/${t.record.name}`;
    successAt.set(key, Math.min(successAt.get(key) ?? Number.POSITIVE_INFINITY, end.t));
  }

  const firstEnd = new Map<string, number>();
  for (const r of records) {
    if (r.ev !== 'end') continue;
    const key = `${r.inc}/${r.task}`;
    firstEnd.set(key, Math.min(firstEnd.get(key) ?? Number.POSITIVE_INFINITY, r.t));
  }
  let rerunsAfterEnd = 0;

  let starts = 0;
  let startsAfterSuccess = 0;
  const intervals = new Map<string, Array<{ key: string; parts: Interval[] }>>();
  for (const [key, rs] of attempts) {
    rs.sort((a, b) => a.t - b.t);
    const first = rs[0]!;
    const last = rs[rs.length - 1]!;
    const taskKey = `${first.inc}/${first.task}`;
    if (first.ev === 'start') {
      starts++;
      if (first.t > (firstEnd.get(taskKey) ?? Number.POSITIVE_INFINITY)) rerunsAfterEnd++;
      const sAt = successAt.get(taskKey);
      if (sAt !== undefined && first.t > sAt) {
        startsAfterSuccess++;
        note(`start after success: ${taskKey} attempt ${first.attempt} (pid ${first.pid}) ${(first.t - sAt).toFixed(0)} ms after`);
      }
    }
    const finished = ['end', 'fail', 'aborted'].includes(last.ev);
    const kill = killAt.get(first.pid);
    const endT = finished ? last.t : kill !== undefined && kill > last.t ? kill : last.t;
    const parts = subtract([first.t, endT], frozen.get(first.pid) ?? []);
    intervals.set(taskKey, [...(intervals.get(taskKey) ?? []), { key, parts }]);
  }
  let overlaps = 0;
  for (const [taskKey, list] of intervals) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        if (intersects(list[i]!.parts, list[j]!.parts)) {
          overlaps++;
          note(`overlap: ${taskKey}: ${list[i]!.key} and ${list[j]!.key}`);
        }
      }
    }
  }

  // Outcomes as stored.
  let lost = 0;
  let successAsFailure = 0;
  let storedErrors = 0;
  const byName = new Map((snapshot?.tasks ?? []).map((t) => [t.record.name, t]));
  const endedOk = new Set(
    records.filter((r) => r.ev === 'end' && r.inc === inc).map((r) => `${r.task}/${r.attempt}`),
  );
  for (const name of expectedTasks) {
    const t = byName.get(name);
    if (!t) {
      lost++;
      note(`lost: task ${name} missing from the container`);
      continue;
    }
    if (t.state.status !== 'succeeded') {
      lost++;
      note(`lost: ${name} ended ${t.state.status}${t.state.lastError ? ` (${t.state.lastError.name}: ${t.state.lastError.message.slice(0, 120)})` : ''}`);
    } else if (t.state.output !== expectedOutput(inc, name)) {
      foreign++;
      note(`foreign output: ${name} = ${JSON.stringify(t.state.output)}, expected ${expectedOutput(inc, name)}`);
    }
    for (const e of t.state.errors) {
      storedErrors++;
      if (endedOk.has(`${name}/${e.attempt}`)) {
        successAsFailure++;
        note(`success stored as failure: ${name} attempt ${e.attempt}: ${e.name}: ${e.message.slice(0, 160)}`);
      }
    }
  }
  const status = snapshot?.container.status ?? 'missing';
  const derived = snapshot ? derivedStatus(snapshot) : 'missing';
  const statusMismatch = status === derived ? 0 : 1;
  if (statusMismatch) note(`container status ${status} but its tasks say ${derived}`);
  return {
    startsAfterSuccess,
    overlaps,
    lost,
    foreign,
    successAsFailure,
    statusMismatch,
    tasks: expectedTasks.length,
    starts,
    attempts: attempts.size,
    successEvents,
    storedErrors,
    leaseLost,
    aborted,
    rerunsAfterEnd,
    status,
    derived,
    details,
  };
}

/** The one summary line of a scenario. */
export function summaryLine(scenario: string, c: ChaosCounts, durationMs: number, extra: Record<string, number | string> = {}): string {
  const verdict =
    c.startsAfterSuccess + c.overlaps + c.lost + c.foreign + c.successAsFailure + c.statusMismatch === 0 ? 'PASS' : 'FAIL';
  const more = Object.entries(extra)
    .map(([k, v]) => ` ${k}=${v}`)
    .join('');
  return (
    `[chaos] ${scenario}: ${verdict} startsAfterSuccess=${c.startsAfterSuccess} overlaps=${c.overlaps} lost=${c.lost} ` +
    `foreign=${c.foreign} successAsFailure=${c.successAsFailure} statusMismatch=${c.statusMismatch} ` +
    `(tasks=${c.tasks} starts=${c.starts} successEvents=${c.successEvents} storedErrors=${c.storedErrors} ` +
    `leaseLost=${c.leaseLost} aborted=${c.aborted} rerunsAfterEnd=${c.rerunsAfterEnd} status=${c.status} derived=${c.derived}${more}) ${(durationMs / 1000).toFixed(1)}s`
  );
}
