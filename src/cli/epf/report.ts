/**
 * What a person sees while the EPF job runs: on a TTY, one bar for the
 * container and one per file (bytes while downloading and extracting, rows
 * while importing); on a pipe, plain lines at most once per second per file.
 * At the end, a summary (and with --json, the summary as one JSON line).
 */
import cliProgress from 'cli-progress';
import type { EpfReporter, FilePhase } from '../../ingest/epf/env.js';
import type { PlannedFile } from '../../ingest/epf/plan.js';
import type { EpfSummary } from '../../ingest/epf/summary.js';

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
  detail: string;
  lastPrinted: number;
  bar?: cliProgress.SingleBar;
}

/** A live reporter: bars on a TTY, throttled lines elsewhere. Counts bytes received in this process. */
export class ConsoleReporter implements EpfReporter {
  /** Bytes received from the feed by this process (restarts and resumes included). */
  bytesReceived = 0;
  private readonly files = new Map<string, FileView>();
  private readonly lastOffset = new Map<string, number>();
  private multibar: cliProgress.MultiBar | undefined;
  private containerBar: cliProgress.SingleBar | undefined;
  private finishedTasks = 0;

  constructor(
    private readonly tty: boolean,
    private readonly write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
    private readonly intervalMs = 1_000,
  ) {}

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
    if (this.tty && files.length > 0) {
      this.multibar = new cliProgress.MultiBar(
        { format: ' {bar} {percentage}% {value_h} | {label}', barsize: 20, hideCursor: true, clearOnComplete: false, fps: 5 },
        cliProgress.Presets.shades_classic,
      );
      this.containerBar = this.multibar.create(files.length * 4 + 2, 0, { label: 'container', value_h: '' });
      for (const f of files) this.view(f.id);
    }
  }

  /** Container-level progress: one more task finished. */
  taskFinished(): void {
    this.finishedTasks += 1;
    const total = this.containerBar?.getTotal() ?? 0;
    this.containerBar?.update(this.finishedTasks, { label: 'container', value_h: `${this.finishedTasks}/${total} tasks` });
  }

  file(id: string, phase: FilePhase, done: number, total?: number, detail = ''): void {
    if (phase === 'download') {
      // `done` is a byte offset; the first report of a file in this process is where it resumes.
      const prev = this.lastOffset.get(id);
      if (prev !== undefined) this.bytesReceived += done >= prev ? done - prev : done;
      this.lastOffset.set(id, done);
    }
    const v = this.view(id);
    const changed = v.phase !== phase;
    Object.assign(v, { phase, done, total, detail });
    const unit = phase === 'import' ? 'rows' : 'bytes';
    const amount = unit === 'rows' ? `${done} rows${detail ? ` (${detail})` : ''}` : `${formatBytes(done)} / ${formatBytes(total)}`;
    if (v.bar) {
      v.bar.setTotal(total ?? Math.max(done, 1));
      v.bar.update(total ? Math.min(done, total) : done, { label: `${id} ${phase}`, value_h: amount });
      return;
    }
    const now = Date.now();
    if (changed || phase === 'done' || now - v.lastPrinted >= this.intervalMs) {
      v.lastPrinted = now;
      const pct = total ? ` ${Math.floor((100 * Math.min(done, total)) / total)}%` : '';
      this.write(phase === 'done' ? `${id}: done` : `${id}: ${phase}${pct} ${amount}`);
    }
  }

  /** Forgets the files of the previous slot (hourly mode). */
  reset(): void {
    this.stop();
    this.files.clear();
    this.lastOffset.clear();
    this.finishedTasks = 0;
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
  }

  private view(id: string): FileView {
    let v = this.files.get(id);
    if (!v) {
      v = { phase: 'download', done: 0, total: undefined, detail: '', lastPrinted: 0 };
      if (this.multibar) v.bar = this.multibar.create(1, 0, { label: `${id} waiting`, value_h: '' });
      this.files.set(id, v);
    }
    return v;
  }
}

/** Prints the summary as text. */
export function printSummary(s: EpfSummary, write: (l: string) => void): void {
  write('');
  write(`${s.container}: ${s.status} in ${(s.durationMs / 1000).toFixed(1)} s`);
  if (s.nothingNew) {
    write('Nothing new to do: every ready file is already in the ledger.');
    return;
  }
  write(
    `files: ${s.files.ingested} ingested, ${s.files.failed} failed, ${s.files.waiting} waiting; ` +
      `downloaded ${formatBytes(s.bytesDownloaded)}; retries ${s.retries}`,
  );
  for (const [table, t] of Object.entries(s.tables).sort()) {
    const extra = [t.repaired ? `${t.repaired} repaired` : '', t.rejected ? `${t.rejected} rejected` : '', t.replacedUtf8 ? `${t.replacedUtf8} with invalid UTF-8 replaced` : '']
      .filter(Boolean)
      .join(', ');
    write(`  ${table.padEnd(40)} ${String(t.rows).padStart(10)} rows${extra ? ` (${extra})` : ''}`);
  }
}
