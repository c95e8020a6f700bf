import { NotFoundError, TaskStatusError, ValidationError } from '../errors.js';

/** Process exit codes of `pts`. */
export const ExitCode = {
  /** Done. */
  OK: 0,
  /** Anything else: server unreachable, authentication, unexpected errors. */
  ERROR: 1,
  /** Bad usage or input: unknown option, missing/invalid URI, bad interval, invalid prefix, task not retryable. */
  USAGE: 2,
  /** The container or task does not exist. */
  NOT_FOUND: 3,
  /** `status --watch`: the container finished as failed. */
  CONTAINER_FAILED: 4,
  /** `status --watch`: the container finished as cancelled. */
  CONTAINER_CANCELLED: 5,
  /** `pts epf`: another healthy run of the job is in progress; nothing was done (EX_TEMPFAIL: try again later). */
  BUSY: 75,
  /** Interrupted (Ctrl-C / SIGTERM) while watching. */
  INTERRUPTED: 130,
} as const;

/** An error meant for the user: printed as one line, exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    /** Exit code of the process. */
    readonly exitCode: number = ExitCode.ERROR,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** A usage error (exit code 2). */
export function usageError(message: string): CliError {
  return new CliError(message, ExitCode.USAGE);
}

const USAGE_CODES = new Set(['PTS_VALIDATION', 'PTS_INVALID_OPTION', 'PTS_INVALID_NAME']);

/** The exit code an error maps to. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  const code = (error as { code?: unknown })?.code;
  if (error instanceof NotFoundError || code === 'PTS_NOT_FOUND' || code === 'PTS_UNKNOWN_SCHEDULE') return ExitCode.NOT_FOUND;
  if (error instanceof ValidationError) return ExitCode.USAGE;
  if (error instanceof TaskStatusError && USAGE_CODES.has(error.code)) return ExitCode.USAGE;
  if ((error as { name?: unknown })?.name === 'MongoParseError') return ExitCode.USAGE;
  return ExitCode.ERROR;
}

/** One line describing an error, without a stack. */
export function describeError(error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  const name = (error as { name?: unknown })?.name;
  const message = oneLine(raw) || (typeof name === 'string' ? name : 'unknown error');
  if (name === 'MongoParseError') return `invalid MongoDB URI: ${message}`;
  return message;
}

/** Joins the lines of a message into one. */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join(' ');
}
