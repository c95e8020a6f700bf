import type { ContainerStatusReport, TaskStatusReport } from '../../status/container-status.js';
import { clean, formatCounts, formatDate, formatDuration, formatPercent, table } from './format.js';

/** One row of `pts list`: a container report without its tasks. */
export type ContainerSummary = Omit<ContainerStatusReport, 'tasks'>;

/** Drops the per-task part of a report. */
export function toSummary(report: ContainerStatusReport): ContainerSummary {
  const { tasks: _tasks, ...summary } = report;
  return summary;
}

/** Task counts as `done/total` plus what is not done yet, e.g. `3/8 (2 running, 1 failed)`. */
export function formatTaskCounts(s: ContainerSummary): string {
  const { succeeded, ...rest } = s.counts;
  const others = Object.entries(rest)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${n} ${status}`);
  return `${succeeded}/${s.total} succeeded${others.length > 0 ? ` (${others.join(', ')})` : ''}`;
}

/** ETA text of a container: `-` once finished, `unknown` before any task finished. */
export function formatEta(s: ContainerSummary): string {
  if (s.status !== 'running') return '-';
  return s.etaMs === null ? 'unknown' : formatDuration(s.etaMs);
}

/** The `pts list` table. */
export function renderList(summaries: ContainerSummary[]): string[] {
  return table(
    ['CONTAINER', 'STATUS', 'DONE', 'TASKS', 'CREATED'],
    summaries.map((s) => [
      clean(s.name),
      s.status + (s.cancelRequested && s.status === 'running' ? ' (cancelling)' : ''),
      formatPercent(s.percentComplete),
      formatTaskCounts(s),
      formatDate(s.createdAt),
    ]),
  );
}

/**
 * Time a task has taken: its duration once ended, the time since it started
 * while running; for a lost runner, the time until its last sign of life.
 */
export function taskTime(t: TaskStatusReport, now: number): string {
  if (t.durationMs !== null && t.status !== 'running') return formatDuration(t.durationMs);
  if (t.status === 'running' && t.startedAt) {
    const until = t.runnerLost ? (t.runnerLost.lastHeartbeatAt ?? t.runnerLost.expiresAt).getTime() : now;
    return formatDuration(until - t.startedAt.getTime());
  }
  return '-';
}

/** The status column: `runner lost` for a running task whose runner stopped renewing its lease. */
export function taskStatusLabel(t: TaskStatusReport): string {
  return t.runnerLost ? 'runner lost' : t.status;
}

/**
 * `runner lost, waiting for takeover (lease expires in 12 s)`, or
 * `(lease expired 3 s ago)` once another runner may take it over. Counts
 * down to `takeoverAt`, the judged expiry on this machine's clock (`now`),
 * never to the expiry the holder wrote on its own clock.
 */
export function formatRunnerLost(lost: NonNullable<TaskStatusReport['runnerLost']>, now: number): string {
  const ms = lost.takeoverAt.getTime() - now;
  const when = ms > 0 ? `lease expires in ${Math.ceil(ms / 1000)} s` : `lease expired ${Math.floor(-ms / 1000)} s ago`;
  return `runner lost, waiting for takeover (${when})`;
}

/** What a running task is doing, as a ` - …` suffix: its status text, or that its runner is lost. */
export function runningInfo(t: TaskStatusReport, now: number): string {
  if (t.runnerLost) return ` - ${formatRunnerLost(t.runnerLost, now)}`;
  return t.statusText ? ` - ${clean(t.statusText)}` : '';
}

/** The full `pts status` report as text lines. */
export function renderStatus(r: ContainerStatusReport, now = Date.now()): string[] {
  const lines = [
    `Container: ${clean(r.name)}`,
    `Status:    ${r.status}${r.cancelRequested && r.status === 'running' ? ' (cancel requested)' : ''}`,
    `Progress:  ${formatPercent(r.percentComplete)}${r.status === 'running' ? `  ETA ${formatEta(r)}` : ''}`,
    `Tasks:     ${r.total} total: ${formatCounts(r.counts)}${r.runnersLost > 0 ? ` (${r.runnersLost} with a lost runner)` : ''}`,
    `Created:   ${formatDate(r.createdAt)}`,
    `Finished:  ${formatDate(r.finishedAt)}${r.finishedAt ? ` (took ${formatDuration(r.finishedAt.getTime() - r.createdAt.getTime())})` : ''}`,
  ];
  if (r.tasks.length === 0) return lines;
  const rows = table(
    ['TASK', 'STATUS', 'ATTEMPT', 'DONE', 'STARTED', 'TIME', 'STATUS TEXT'],
    r.tasks.map((t) => [
      clean(t.name),
      taskStatusLabel(t),
      String(t.attempt),
      formatPercent(t.percentComplete),
      formatDate(t.startedAt),
      taskTime(t, now),
      clean(t.statusText),
    ]),
  );
  lines.push('', rows[0]!);
  r.tasks.forEach((t, i) => {
    lines.push(rows[i + 1]!);
    lines.push(...taskDetails(t, now));
  });
  return lines;
}

/** Indented detail lines under a task: lost runner, last error, retry time, reason, where it stopped. */
export function taskDetails(t: TaskStatusReport, now = Date.now()): string[] {
  const out: string[] = [];
  if (t.runnerLost) out.push(`    ${formatRunnerLost(t.runnerLost, now)}; held by ${clean(t.runnerLost.holder)}`);
  if (t.lastError) {
    out.push(`    last error (attempt ${t.lastError.attempt}): ${clean(t.lastError.name)}: ${clean(t.lastError.message)}`);
  }
  if (t.retryAt) out.push(`    retry at: ${formatDate(t.retryAt)}`);
  if (t.reason) out.push(`    reason: ${clean(t.reason)}`);
  // Not current any more, but it says where an unfinished task stopped.
  if (t.status !== 'running' && t.status !== 'succeeded' && t.lastStatusText) {
    out.push(`    last status text: ${clean(t.lastStatusText)}`);
  }
  return out;
}

/** A compact snapshot for plain-text `--watch`: one line for the container, one per running task. */
export function renderSnapshot(r: ContainerStatusReport, now = Date.now()): string[] {
  const stamp = formatDate(new Date(now)).slice(11, 19);
  const head = `[${stamp}] ${clean(r.name)} ${r.status} ${formatPercent(r.percentComplete)} | ${formatTaskCounts(r)}${
    r.status === 'running' ? ` | ETA ${formatEta(r)}` : ''
  }`;
  const running = r.tasks
    .filter((t) => t.status === 'running')
    .map(
      (t) =>
        `  ${clean(t.name)} ${formatPercent(t.percentComplete)} attempt ${t.attempt}, ${taskTime(t, now)}${runningInfo(t, now)}`,
    );
  return [head, ...running];
}
