/**
 * The figures of a run: one row per measured figure (printed as soon as its
 * case finishes), the raw data of every case, and the final table and
 * bench/results.json.
 */
import fs from 'node:fs';

export interface Row {
  case: string;
  tasks: number | null;
  cmdsPerTask?: number;
  docsPerTask?: number;
  seconds?: number;
  /** What is compared, as shown in the table (e.g. "0.42× floor"). */
  ratio?: string;
  /** The ratios themselves, by name, for results.json. */
  ratios?: Record<string, number>;
  goal?: string;
  /** null: no goal for this figure (reported only). */
  met?: boolean | null;
  /** How far the figure misses its goal, or what is partial about it. */
  note?: string;
}

export class Results {
  readonly rows: Row[] = [];
  readonly cases: Record<string, unknown> = {};

  add(row: Row): void {
    this.rows.push(row);
    console.log(formatLine(row));
  }

  raw(name: string, data: unknown): void {
    this.cases[name] = data;
  }
}

const fmt = (x: number | undefined, digits = 2): string =>
  x === undefined ? '' : !Number.isFinite(x) ? String(x) : Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(digits);

function metText(row: Row): string {
  if (row.met === undefined || row.met === null) return row.goal ? 'n/a' : '';
  return row.met ? 'yes' : 'NO';
}

/** One line per row, as printed while the run goes on. */
export function formatLine(r: Row): string {
  const parts = [`[${r.case}]`];
  if (r.tasks !== null) parts.push(`${r.tasks} tasks`);
  if (r.cmdsPerTask !== undefined) parts.push(`${fmt(r.cmdsPerTask)} cmds/task`);
  if (r.docsPerTask !== undefined) parts.push(`${fmt(r.docsPerTask)} docs/task`);
  if (r.seconds !== undefined) parts.push(`${fmt(r.seconds)} s`);
  if (r.ratio) parts.push(r.ratio);
  if (r.goal) parts.push(`goal ${r.goal}: ${metText(r)}`);
  if (r.note) parts.push(`(${r.note})`);
  return parts.join('  ');
}

export function table(rows: Row[]): string {
  const head = ['case', 'tasks', 'cmds/task', 'docs/task', 'time s', 'ratio', 'goal', 'met?', 'note'];
  const body = rows.map((r) => [
    r.case,
    r.tasks === null ? '' : String(r.tasks),
    fmt(r.cmdsPerTask),
    fmt(r.docsPerTask),
    fmt(r.seconds),
    r.ratio ?? '',
    r.goal ?? '',
    metText(r),
    r.note ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 1 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function writeJson(file: string, meta: Record<string, unknown>, results: Results): void {
  fs.writeFileSync(file, `${JSON.stringify({ ...meta, rows: results.rows, cases: results.cases }, null, 2)}\n`);
}

/** "missed by 2.4×" style note for a figure above its ceiling. */
export function overBy(value: number, ceiling: number): string | undefined {
  if (value <= ceiling) return undefined;
  return `misses by ${(value / ceiling).toFixed(2)}×`;
}

/** Note for a figure below its floor. */
export function underBy(value: number, floor: number): string | undefined {
  if (value >= floor) return undefined;
  return `misses: ${(floor / Math.max(value, 1e-9)).toFixed(2)}× below`;
}

export function label(n: number): string {
  return n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);
}

export function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}
