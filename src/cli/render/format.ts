import type { TaskStatus } from '../../store/types.js';

/** Task statuses in display order. */
export const TASK_STATUS_ORDER: readonly TaskStatus[] = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'];

/** Replaces control characters (ANSI escapes, newlines…) so stored text cannot garble the terminal. */
export function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return ' ';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** A duration for people: `850ms`, `12.3s`, `4m 05s`, `2h 03m`, `1d 02h`. */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  const v = Math.max(0, ms);
  if (v < 1000) return `${Math.round(v)}ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(1)}s`;
  const s = Math.floor(v / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${pad2(Math.floor(s / 3600) % 24)}h`;
}

/** A UTC timestamp: `2024-05-01 12:00:00Z` (`-` for null). */
export function formatDate(d: Date | null): string {
  if (!d) return '-';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** A percentage: `45.5%`, `100%`. */
export function formatPercent(p: number): string {
  return `${Number.isInteger(p) ? p : p.toFixed(1)}%`;
}

/** Non-zero task counts in display order, e.g. `3 succeeded, 2 running`. */
export function formatCounts(counts: Record<TaskStatus, number>): string {
  const parts = TASK_STATUS_ORDER.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
  return parts.length > 0 ? parts.join(', ') : 'no tasks';
}

/** Cuts text to `width` characters, marking the cut with `…`. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string[] {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}
