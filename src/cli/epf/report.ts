/**
 * What a person sees while the EPF job runs: on a TTY, a container line,
 * the active files that fit the terminal (bytes while downloading and
 * extracting, rows while importing) and an aggregate line; on a pipe, plain
 * lines at most once per second per file. At the end, a summary.
 */
import cliProgress from 'cli-progress';
import type { EpfReporter, FilePhase } from '../../ingest/epf/env.js';
import type { PlannedFile } from '../../ingest/epf/plan.js';
import type { EpfSummary } from '../../ingest/epf/summary.js';
import { formatDuration } from './output.js';

/** Human-readable bytes: `12.3 MB`. */
export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '?';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

interface FileView {
  phase: FilePhase;
  done: number;
  total: number | undefined;
  fraction: number | undefined;
  detail: string;
  /** Bytes of the archive, once known (shown when the file is done). */
  size: number | undefined;
  lastPrinted: number;
  /** When it last changed phase or finished (display order of finished files). */
  changedAt: number;
}

/** Lines kept free below the bars: the shell prompt and lines printed meanwhile. */
const SPARE_ROWS = 4;
const BAR_SIZE = 20;

/** Options of {@link ConsoleReporter}. */
export interface ConsoleReporterOptions {
  /** Where the bars are drawn (its `rows` and `columns` size them). @defaultValue process.stdout */
  stream?: NodeJS.WriteStream;
  /** Least time between two plain progress lines of one file, ms. @defaultValue 1000 */
  intervalMs?: number;
}

/**
 * A live reporter. On a TTY: one line for the container, as many active
 * files as fit the terminal, and one aggregate line for the rest (so a feed
 * with more files than rows never scrolls). Elsewhere: plain lines, at most
 * one per file per `intervalMs`. Counts bytes received in this process.
 */
export class ConsoleReporter implements EpfReporter {
  /** Bytes received from the feed by this process (restarts and resumes included). */
  bytesReceived = 0;
  private readonly files = new Map<string, FileView>();
  private readonly lastOffset = new Map<string, number>();
  private multibar: cliProgress.MultiBar | undefined;
  private containerBar: cliProgress.SingleBar | undefined;
  private aggregateBar: cliProgress.SingleBar | undefined;
  private slots: cliProgress.SingleBar[] = [];
  private tasksDone = 0;
  private tasksTotal = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly intervalMs: number;

  constructor(
    private readonly tty: boolean,
    private readonly write: (line: string, fields?: Record<string, unknown>) => void = (l) => process.stdout.write(`${l}\n`),
    o: ConsoleReporterOptions = {},
  ) {
    this.stream = o.stream ?? process.stdout;
    this.intervalMs = o.intervalMs ?? 1_000;
  }

  /** Prints a line above the bars (or plainly). */
  log(line: string): void {
    if (this.multibar) this.multibar.log(`${line}\n`);
    else this.write(line);
  }

  warn(message: string): void {
    this.log(`warning: ${message}`);
  }

  planned(files: PlannedFile[], waiting: Array<{ name: string; reason: string }>): void {
    if (files.length === 0) this.log('Nothing new to ingest.');
    else this.log(`${files.length} new file(s): ${files.map((f) => `${f.group}${f.date}/${f.name}`).join(', ')}`);
    for (const w of waiting) this.log(`  not yet: ${w.name} (${w.reason})`);
    // discover, then four steps per file and export-complete.
    if (files.length > 0) this.tasksTotal = Math.max(this.tasksTotal, files.length * 4 + 2);
    for (const f of files) this.view(f.id).size = f.size;
    this.render();
  }

  /** The container's tasks as read when the run started (a resumed run starts part way). */
  setTasks(done: number, total: number): void {
    this.tasksDone = done;
    this.tasksTotal = total;
    this.render();
  }

  /** Container-level progress: one more task finished. */
  taskFinished(): void {
    this.tasksDone += 1;
    this.tasksTotal = Math.max(this.tasksTotal, this.tasksDone);
    this.render();
  }

  file(id: string, phase: FilePhase, done: number, total?: number, detail = '', fraction?: number): void {
    if (phase === 'download') {
      // `done` is a byte offset; the first report of a file in this process is where it resumes.
      const prev = this.lastOffset.get(id);
      if (prev !== undefined) this.bytesReceived += done >= prev ? done - prev : done;
      this.lastOffset.set(id, done);
    }
    const v = this.view(id);
    const changed = v.phase !== phase;
    if (changed) v.changedAt = Date.now();
    Object.assign(v, { phase, done, total, detail, fraction });
    if (phase === 'download' && total !== undefined) v.size = total;
    if (phase === 'done' && total !== undefined) v.size = total;
    if (this.tty) {
      this.render();
      return;
    }
    const now = Date.now();
    if (changed || phase === 'done' || now - v.lastPrinted >= this.intervalMs) {
      v.lastPrinted = now;
      const pct = percentOf(v);
      const text = phase === 'done' ? `${id}: done (${formatBytes(v.size)})` : `${id}: ${phase}${pct === undefined ? '' : ` ${pct}%`} ${amountOf(v)}`;
      this.write(text, { event: 'epf:file', file: id, phase, done, ...(total !== undefined ? { total } : {}), ...(detail ? { detail } : {}) });
    }
  }

  /** Forgets the files of the previous slot (hourly mode). */
  reset(): void {
    this.stop();
    this.files.clear();
    this.lastOffset.clear();
    this.tasksDone = 0;
    this.tasksTotal = 0;
  }

  /** Returns the bytes received since the last call, and starts counting again. */
  takeBytesReceived(): number {
    const n = this.bytesReceived;
    this.bytesReceived = 0;
    return n;
  }

  /** Stops the bars (call before printing the summary). */
  stop(): void {
    this.multibar?.stop();
    this.multibar = undefined;
    this.containerBar = undefined;
    this.aggregateBar = undefined;
    this.slots = [];
  }

  /** File rows that fit: the terminal's rows less the container and aggregate lines and {@link SPARE_ROWS}. */
  private fileRows(): number {
    const rows = typeof this.stream.rows === 'number' && this.stream.rows > 0 ? this.stream.rows : 24;
    return Math.max(0, rows - 2 - SPARE_ROWS);
  }

  private width(): number {
    return typeof this.stream.columns === 'number' && this.stream.columns > 0 ? this.stream.columns : 80;
  }

  /** Draws the bars (created on first use, so a resumed run that skips discovery draws them too). */
  private render(): void {
    if (!this.tty) return;
    if (!this.multibar) {
      this.multibar = new cliProgress.MultiBar(
        {
          format: ' {bar} {pct} {label}',
          barsize: BAR_SIZE,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          fps: 5,
          stream: this.stream,
          linewrap: false,
          forceRedraw: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.containerBar = this.multibar.create(1, 0, { pct: '', label: '' });
      for (let i = 0; i < this.fileRows(); i++) this.slots.push(this.multibar.create(1, 0, { pct: '', label: '' }, { format: '{label}' }));
      this.aggregateBar = this.multibar.create(1, 0, { pct: '', label: '' }, { format: '{label}' });
    }
    const labelWidth = Math.max(10, this.width() - BAR_SIZE - 10);
    const cut = (text: string) => (text.length > labelWidth ? `${text.slice(0, labelWidth - 1)}…` : text);
    const total = Math.max(1, this.tasksTotal);
    this.containerBar!.setTotal(total);
    this.containerBar!.update(Math.min(this.tasksDone, total), {
      pct: `${String(Math.floor((100 * Math.min(this.tasksDone, total)) / total)).padStart(3)}%`,
      label: cut(`container: ${this.tasksDone}/${this.tasksTotal || '?'} tasks`),
    });
    const views = [...this.files.entries()];
    const active = views.filter(([, v]) => v.phase !== 'done' && (v.done > 0 || v.fraction !== undefined || v.phase !== 'download'));
    const finished = views.filter(([, v]) => v.phase === 'done').sort((a, b) => b[1].changedAt - a[1].changedAt);
    const shown = [...active, ...finished].slice(0, this.slots.length);
    this.slots.forEach((bar, i) => {
      const entry = shown[i];
      if (!entry) return bar.update(0, { label: '' });
      const [id, v] = entry;
      const pct = v.phase === 'done' ? 100 : (percentOf(v) ?? 0);
      const filled = Math.round((BAR_SIZE * pct) / 100);
      const text = v.phase === 'done' ? `done ${formatBytes(v.size)}` : `${v.phase} ${amountOf(v)}`;
      bar.update(0, { label: ` ${'█'.repeat(filled)}${'░'.repeat(BAR_SIZE - filled)} ${String(pct).padStart(3)}% ${cut(`${id} ${text}`)}` });
    });
    const hidden = active.length - Math.min(active.length, this.slots.length);
    const counts = { download: 0, extract: 0, import: 0 };
    for (const [, v] of active) if (v.phase !== 'done') counts[v.phase] += 1;
    const waiting = views.length - active.length - finished.length;
    const full = this.width() - 1;
    const cutLine = (text: string) => (text.length > full ? `${text.slice(0, full - 1)}…` : text);
    this.aggregateBar!.update(0, {
      label: cutLine(
        ` files: ${finished.length}/${views.length} done, ${counts.download} downloading, ${counts.extract} extracting, ${counts.import} importing` +
          `${waiting > 0 ? `, ${waiting} waiting` : ''}${hidden > 0 ? ` (${hidden} more not shown)` : ''}`,
      ),
    });
  }

  private view(id: string): FileView {
    let v = this.files.get(id);
    if (!v) {
      v = { phase: 'download', done: 0, total: undefined, fraction: undefined, detail: '', size: undefined, lastPrinted: 0, changedAt: Date.now() };
      this.files.set(id, v);
    }
    return v;
  }
}

/** Whole percent of a file's current phase, when known. */
function percentOf(v: FileView): number | undefined {
  if (v.fraction !== undefined) return Math.floor(100 * Math.min(1, Math.max(0, v.fraction)));
  if (v.total) return Math.floor((100 * Math.min(v.done, v.total)) / v.total);
  return undefined;
}

/** Bytes so far of downloads and extracts, rows of imports. */
function amountOf(v: FileView): string {
  if (v.phase === 'import') return `${v.done} rows${v.detail ? ` (${v.detail})` : ''}`;
  return `${formatBytes(v.done)} / ${formatBytes(v.total)}`;
}

/** Prints the summary as text. */
export function printSummary(s: EpfSummary, write: (l: string) => void): void {
  write('');
  write(`${s.container}: ${s.status} in ${formatDuration(s.durationMs)}`);
  if (s.nothingNew) {
    write('Nothing new to do: every ready file is already in the ledger.');
    return;
  }
  write(
    `files: ${s.files.ingested} ingested, ${s.files.failed} failed, ${s.files.skipped} skipped, ${s.files.waiting} waiting; ` +
      `downloaded ${formatBytes(s.bytesDownloaded)}; retries ${s.retries}`,
  );
  const tables = Object.entries(s.tables).sort(([a], [b]) => a.localeCompare(b));
  if (tables.length > 0) write(`  ${'table'.padEnd(40)} ${'rows written'.padStart(12)} ${'table size'.padStart(12)}`);
  for (const [table, t] of tables) {
    const extra = [
      t.repaired ? `${t.repaired} repaired` : '',
      t.rejected ? `${t.rejected} rejected` : '',
      t.replacedUtf8 ? `${t.replacedUtf8} with invalid UTF-8 replaced` : '',
    ]
      .filter(Boolean)
      .join(', ');
    write(`  ${table.padEnd(40)} ${String(t.rows).padStart(12)} ${String(t.size ?? '?').padStart(12)}${extra ? `  (${extra})` : ''}`);
  }
  for (const f of s.failures) write(`  ✗ ${f.task}: ${f.error}`);
}
