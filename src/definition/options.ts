import { InvalidOptionError } from '../errors.js';

/**
 * Longest delay Node's timers accept (2^31 - 1 ms, about 24.8 days); a longer
 * one fires after 1 ms, so options used as timers are refused above it.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Exponential backoff between attempts of a failing task. */
export interface BackoffOptions {
  /** Delay before the first retry. @defaultValue 1000 */
  initialMs?: number;
  /** Multiplier applied per further retry. @defaultValue 2 */
  factor?: number;
  /** Upper bound of one delay. @defaultValue 300000 (5 minutes) */
  maxMs?: number;
  /** Random spread as a fraction of the delay (0 = none, 0.5 = ±50 %). @defaultValue 0.25 */
  jitter?: number;
}

/** Per-task options, shared by declared tasks and tasks added at run time. */
export interface TaskOptions {
  /** Retries after the first failed attempt. @defaultValue 3 */
  retries?: number;
  /** Backoff between attempts. */
  backoff?: BackoffOptions;
  /** Per-attempt time limit in milliseconds, at most {@link MAX_TIMER_MS}; `0` means none. @defaultValue 0 */
  timeoutMs?: number;
  /** Name of a concurrency group whose limit is set on the runner. */
  group?: string;
  /**
   * Affinity key: the tasks that share it run on the runner that last claimed
   * one of them (e.g. the steps of one file stay where its bytes are), until
   * that runner is judged gone; see docs/concepts.md, "Affinity". Up to 200
   * characters. @defaultValue none
   */
  affinity?: string;
  /**
   * Order among ready tasks: every runner claims ready tasks of a higher
   * priority before those of a lower one, and declaration order within one
   * priority. Any finite number; negative ones run after the default.
   * Stored with the task (a re-declared container updates it like any option). @defaultValue 0
   */
  priority?: number;
}

/** Task options with every default filled in. */
export interface ResolvedTaskOptions {
  retries: number;
  backoff: Required<BackoffOptions>;
  timeoutMs: number;
  group: string | null;
  /** Affinity key; absent when the task has none (see {@link TaskOptions.affinity}). */
  affinity?: string;
  /** Absent means 0 (kept out of stored options unless set, so records of earlier versions read the same). */
  priority?: number;
}

/** The defaults used when a task leaves an option out. */
export const DEFAULT_TASK_OPTIONS: ResolvedTaskOptions = Object.freeze({
  retries: 3,
  backoff: Object.freeze({ initialMs: 1000, factor: 2, maxMs: 300_000, jitter: 0.25 }),
  timeoutMs: 0,
  group: null,
}) as ResolvedTaskOptions;

/** Fills in defaults and validates; the error names the task and the option. */
export function resolveTaskOptions(task: string, options: TaskOptions = {}): ResolvedTaskOptions {
  const where = (o: string) => `${o} (task "${task}")`;
  const retries = options.retries ?? DEFAULT_TASK_OPTIONS.retries;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new InvalidOptionError(where('retries'), `must be a non-negative integer, got ${String(retries)}`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TASK_OPTIONS.timeoutMs;
  nonNegative(where('timeoutMs'), timeoutMs);
  if (timeoutMs > MAX_TIMER_MS) throw new InvalidOptionError(where('timeoutMs'), timerTooLong(timeoutMs));
  const b = { ...DEFAULT_TASK_OPTIONS.backoff, ...stripUndefined(options.backoff ?? {}) };
  nonNegative(where('backoff.initialMs'), b.initialMs);
  nonNegative(where('backoff.maxMs'), b.maxMs);
  if (!(b.factor >= 1)) throw new InvalidOptionError(where('backoff.factor'), `must be >= 1, got ${b.factor}`);
  if (!(b.jitter >= 0 && b.jitter <= 1)) {
    throw new InvalidOptionError(where('backoff.jitter'), `must be between 0 and 1, got ${b.jitter}`);
  }
  const group = options.group ?? null;
  if (group !== null && (typeof group !== 'string' || group.length === 0)) {
    throw new InvalidOptionError(where('group'), 'must be a non-empty string');
  }
  const affinity = options.affinity;
  if (affinity !== undefined && (typeof affinity !== 'string' || affinity.length === 0 || affinity.length > 200)) {
    throw new InvalidOptionError(where('affinity'), `must be a string of 1 to 200 characters, got ${JSON.stringify(affinity)}`);
  }
  const priority = options.priority ?? 0;
  if (typeof priority !== 'number' || !Number.isFinite(priority)) {
    throw new InvalidOptionError(where('priority'), `must be a finite number, got ${String(priority)}`);
  }
  return { retries, backoff: b, timeoutMs, group, ...(priority !== 0 ? { priority } : {}), ...(affinity !== undefined ? { affinity } : {}) };
}

/** A task's priority (0 when its options do not set one). */
export const priorityOf = (options: Pick<ResolvedTaskOptions, 'priority'>): number => options.priority ?? 0;

/** Delay before the retry that follows failure number `failures` (1-based). */
export function backoffDelayMs(backoff: Required<BackoffOptions>, failures: number, random = Math.random): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** Math.max(0, failures - 1));
  const spread = base * backoff.jitter;
  return Math.max(0, Math.round(base - spread + random() * 2 * spread));
}

function nonNegative(option: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(option, `must be a non-negative finite number, got ${String(value)}`);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The reason given when a timer option exceeds {@link MAX_TIMER_MS}. */
export function timerTooLong(ms: number): string {
  return `must be at most ${MAX_TIMER_MS} ms (2^31-1, about 24.8 days; Node's timers fire at once beyond it), got ${ms}`;
}
