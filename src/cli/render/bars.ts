import cliProgress from 'cli-progress';
import type { ContainerStatusReport } from '../../status/container-status.js';
import { clean, formatPercent, truncate } from './format.js';
import { formatEta, formatTaskCounts, runningInfo, taskTime } from './text.js';

/** Characters of the filled and empty parts of a bar. */
export const BAR_CHARS = { complete: '█', incomplete: '░' } as const;

const BAR_WIDTH = 20;
const MAX_LABEL = 32;

interface LinePayload {
  label: string;
  percent: number;
  info: string;
  labelWidth: number;
}

/** A bar of `width` cells, `percent` (0..100) of them filled. */
export function renderBar(percent: number, width = BAR_WIDTH): string {
  const filled = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return BAR_CHARS.complete.repeat(filled) + BAR_CHARS.incomplete.repeat(width - filled);
}

/** One line of the live view, cut to the terminal width so the cursor arithmetic stays right. */
export function formatBarLine(payload: LinePayload, maxWidth: number): string {
  const label = truncate(payload.label, payload.labelWidth).padEnd(payload.labelWidth);
  const line = `${label} ${renderBar(payload.percent)} ${formatPercent(payload.percent).padStart(6)}  ${payload.info}`;
  return truncate(line, Math.max(10, maxWidth - 1));
}

/**
 * The live view of `status --watch` on a terminal: a cli-progress MultiBar with
 * one bar for the container and one per running task. Bars of tasks that stop
 * running are removed; bars of tasks that start are added.
 */
export class LiveBars {
  private readonly multibar: cliProgress.MultiBar;
  private container: cliProgress.SingleBar | null = null;
  private readonly tasks = new Map<string, cliProgress.SingleBar>();
  private stopped = false;

  constructor(stream: NodeJS.WritableStream) {
    this.multibar = new cliProgress.MultiBar({
      stream,
      format: (_options, params, payload: LinePayload) => formatBarLine(payload, params.maxWidth),
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      gracefulExit: false,
      fps: 10,
    });
  }

  /** Brings the bars up to date with a report. */
  update(r: ContainerStatusReport, now = Date.now()): void {
    if (this.stopped) return;
    const labelWidth = Math.min(MAX_LABEL, Math.max(clean(r.name).length, ...r.tasks.map((t) => clean(t.name).length + 2)));
    const head: LinePayload = {
      label: clean(r.name),
      percent: r.percentComplete,
      info: `${r.status}${r.status === 'running' ? `, ETA ${formatEta(r)}` : ''} | ${formatTaskCounts(r)}`,
      labelWidth,
    };
    if (this.container) this.container.update(r.percentComplete, head);
    else this.container = this.multibar.create(100, r.percentComplete, head);

    const running = new Map(r.tasks.filter((t) => t.status === 'running').map((t) => [t.name, t]));
    for (const [name, bar] of this.tasks) {
      if (!running.has(name)) {
        this.multibar.remove(bar);
        this.tasks.delete(name);
      }
    }
    for (const t of running.values()) {
      const payload: LinePayload = {
        label: `  ${clean(t.name)}`,
        percent: t.percentComplete,
        info: `attempt ${t.attempt}, ${taskTime(t, now)}${runningInfo(t, now)}`,
        labelWidth,
      };
      const bar = this.tasks.get(t.name);
      if (bar) bar.update(t.percentComplete, payload);
      else this.tasks.set(t.name, this.multibar.create(100, t.percentComplete, payload));
    }
  }

  /** Draws the last frame, restores the cursor and leaves the bars on screen. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.multibar.stop();
  }
}

/**
 * A stream cli-progress treats as a terminal although stdout is not one
 * (for `PTS_FORCE_TTY=1`): it forwards writes and reports `isTTY`.
 */
export function forcedTtyStream(target: NodeJS.WriteStream, columns: number): NodeJS.WritableStream {
  const wrapper = {
    isTTY: true,
    columns,
    write(chunk: string | Uint8Array, ...rest: unknown[]): boolean {
      const cb = rest.find((x): x is () => void => typeof x === 'function');
      return target.write(chunk, cb);
    },
  };
  return wrapper as unknown as NodeJS.WritableStream;
}
