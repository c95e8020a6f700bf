/**
 * Where `pts epf` writes. stdout carries the result: the summary text, or
 * with `--json` only the summary's JSON object; diagnostics (database, feed,
 * retries, warnings) always go to stderr. With `--log-format json` every
 * line is one JSON object `{ time, level, msg, ...fields }`.
 */
import type { CliIo } from '../io.js';

/** Severity of a line. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Extra fields of a structured line (ignored by the text format). */
export type LogFields = Record<string, unknown>;

/** The output of one `pts epf` process. */
export interface EpfOutput {
  /** A line of the result (summary, "resuming ..."): stdout, or stderr under `--json`. */
  say(line: string, fields?: LogFields): void;
  /** A diagnostic line: stderr. */
  log(level: LogLevel, line: string, fields?: LogFields): void;
  /** The summary object under `--json`: one line on stdout. */
  json(value: unknown): void;
  /** Where a live display may draw: stdout, or stderr under `--json`. */
  readonly display: NodeJS.WriteStream;
  readonly format: 'text' | 'json';
}

/** Builds the output for the given `--json` and `--log-format`. */
export function epfOutput(io: CliIo, o: { json: boolean; format: 'text' | 'json' }): EpfOutput {
  const result = o.json ? io.stderr : io.stdout;
  const line = (stream: NodeJS.WriteStream, level: LogLevel, msg: string, fields?: LogFields) => {
    if (o.format === 'json') stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
    else stream.write(`${msg}\n`);
  };
  return {
    say: (msg, fields) => line(result, 'info', msg, fields),
    log: (level, msg, fields) => line(io.stderr, level, msg, fields),
    json: (value) => io.stdout.write(`${JSON.stringify(value)}\n`),
    display: result,
    format: o.format,
  };
}

/** Milliseconds as people read them: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
