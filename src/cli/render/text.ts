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

/** Time a task has taken: its duration once ended, the time since it started while running. */
export function taskTime(t: TaskStatusReport, now: number): string {
  if (t.durationMs !== null && t.status !== 'running') return formatDuration(t.durationMs);
  if (t.status === 'running' && t.startedAt) return formatDuration(now - t.startedAt.getTime());
  return '-';
}

/** The full `pts status` report as text lines. */
export function renderStatus(r: ContainerStatusReport, now = Date.now()): string[] {
  const lines = [
    `Container: ${clean(r.name)}`,
    `Status:    ${r.status}${r.cancelRequested && r.status === 'running' ? ' (cancel requested)' : ''}`,
    `Progress:  ${formatPercent(r.percentComplete)}${r.status === 'running' ? `  ETA ${formatEta(r)}` : ''}`,
    `Tasks:     ${r.total} total: ${formatCounts(r.counts)}`,
    `Created:   ${formatDate(r.createdAt)}`,
    `Finished:  ${formatDate(r.finishedAt)}${r.finishedAt ? ` (took ${formatDuration(r.finishedAt.getTime() - r.createdAt.getTime())})` : ''}`,
  ];
  if (r.tasks.length === 0) return lines;
  const rows = table(
    ['TASK', 'STATUS', 'ATTEMPT', 'DONE', 'STARTED', 'TIME', 'STATUS TEXT'],
    r.tasks.map((t) => [
      clean(t.name),
      t.status,
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
    lines.push(...taskDetails(t));
  });
  return lines;
}

/** Indented detail lines under a task: last error, retry time, reason. */
export function taskDetails(t: TaskStatusReport): string[] {
  const out: string[] = [];
  if (t.lastError) {
    out.push(`    last error (attempt ${t.lastError.attempt}): ${clean(t.lastError.name)}: ${clean(t.lastError.message)}`);
  }
  if (t.retryAt) out.push(`    retry at: ${formatDate(t.retryAt)}`);
  if (t.reason) out.push(`    reason: ${clean(t.reason)}`);
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
        `  ${clean(t.name)} ${formatPercent(t.percentComplete)} attempt ${t.attempt}, ${taskTime(t, now)}${
          t.statusText ? ` - ${clean(t.statusText)}` : ''
        }`,
    );
  return [head, ...running];
}
