import type { ContainerStatusReport } from '../../status/container-status.js';
import type { ContainerStatus } from '../../store/types.js';
import { printJson } from '../context.js';
import { ExitCode } from '../errors.js';
import { isInteractive, println, terminalColumns, type CliIo } from '../io.js';
import { forcedTtyStream, LiveBars } from '../render/bars.js';
import { renderSnapshot, renderStatus } from '../render/text.js';

/** Options of {@link watchContainer}. */
export interface WatchOptions {
  io: CliIo;
  /** One compact JSON report per refresh instead of bars or text. */
  json: boolean;
  intervalMs: number;
}

/** How a view shows successive reports. */
interface WatchView {
  show(report: ContainerStatusReport): void;
  /** The container finished (`report` is its last state) or the watch was interrupted (`report` may be null). */
  end(report: ContainerStatusReport | null): void;
}

/** Exit code of a watch that saw the container finish with `status`. */
export function exitCodeForStatus(status: ContainerStatus): number {
  if (status === 'succeeded') return ExitCode.OK;
  if (status === 'cancelled') return ExitCode.CONTAINER_CANCELLED;
  return ExitCode.CONTAINER_FAILED;
}

/**
 * Reads the container every `intervalMs` and shows it until it finishes
 * (returns 0 / 4 / 5 by its final status) or SIGINT/SIGTERM arrives (returns 130).
 */
export async function watchContainer(read: () => Promise<ContainerStatusReport>, options: WatchOptions): Promise<number> {
  const view = createView(options);
  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let last: ContainerStatusReport | null = null;
  let ended = false;
  try {
    for (;;) {
      last = await read();
      if (interrupted.signal.aborted) break;
      view.show(last);
      if (last.status !== 'running') {
        ended = true;
        view.end(last);
        return exitCodeForStatus(last.status);
      }
      await sleep(options.intervalMs, interrupted.signal);
      if (interrupted.signal.aborted) break;
    }
    ended = true;
    view.end(null);
    return ExitCode.INTERRUPTED;
  } finally {
    if (!ended) view.end(null);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

function createView({ io, json }: WatchOptions): WatchView {
  if (json) return { show: (r) => printJson(io, r, true), end: () => undefined };
  if (!isInteractive(io)) {
    return {
      show: (r) => {
        for (const line of renderSnapshot(r)) println(io, line);
      },
      end: (r) => {
        if (!r) return;
        println(io);
        for (const line of renderStatus(r)) println(io, line);
      },
    };
  }
  const stream = io.stdout.isTTY ? io.stdout : forcedTtyStream(io.stdout, terminalColumns(io));
  const bars = new LiveBars(stream);
  return {
    show: (r) => bars.update(r),
    end: (r) => {
      bars.stop();
      if (!r) return;
      // The cursor is still on the last bar's line: leave it, then one blank line.
      println(io);
      println(io);
      for (const line of renderStatus(r)) println(io, line);
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
