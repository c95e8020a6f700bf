import { Cron } from 'croner';
import { ContainerBuilder } from '../definition/define.js';
import { assertSafeName } from '../definition/names.js';
import type { ContainerDefinition } from '../definition/types.js';
import { resolveRunnerOptions, type RunnerOptions } from '../engine/runner-options.js';
import { InvalidCronError, InvalidScheduleError, UnknownTimezoneError } from '../errors.js';

/** What to do with a slot whose previous slot's container is still running. */
export type OverlapPolicy = 'skip' | 'queue' | 'parallel';

/** What to do with slots missed while no scheduler ran. */
export type CatchUpPolicy = 'latest' | 'all' | 'none';

/** What a schedule's factory may return for one slot. */
export type SlotContainer = ContainerDefinition | ContainerBuilder<any>;

/** Runner options a schedule may set for its containers' runners. */
export type ScheduleRunnerOptions = Omit<RunnerOptions, 'container' | 'connection' | 'store' | 'collectionPrefix' | 'signal' | 'runnerId'>;

/** Options of {@link defineSchedule}. */
export interface ScheduleOptions {
  /** Unique among the schedules of a database; part of every slot's `_id`. */
  name: string;
  /** Cron expression as croner reads it: 5 fields (minute precision) or 6 (seconds first). */
  cron: string;
  /** IANA time zone the cron expression is read in. @defaultValue 'UTC' */
  timezone?: string;
  /**
   * Builds the slot's container. It may be called more than once for one slot,
   * in several processes (each scheduler validates before it claims, and a
   * resume builds it again), so it must have no side effects: do the work in
   * tasks. The container name must be unique per slot, e.g. `epf-2026-11-29T14:00Z`.
   */
  container: (slot: Date) => SlotContainer | Promise<SlotContainer>;
  /**
   * What to do with a slot whose previous slot's container is still running.
   * `overlap: 'skip'` together with `catchUp: 'all'` is refused: the caught-up
   * slots would skip one another.
   * @defaultValue 'queue' with `catchUp: 'all'`, else 'skip'
   */
  overlap?: OverlapPolicy;
  /** @defaultValue 'latest' */
  catchUp?: CatchUpPolicy;
  /**
   * How late a tick may see a slot and still treat it as on time, in ms. Older
   * due slots count as missed and follow `catchUp`.
   * @defaultValue 60000
   */
  graceMs?: number;
  /**
   * With `catchUp: 'all'`: at most this many missed slots are run (the newest
   * ones, oldest first); older missed slots are passed over and reported.
   * @defaultValue 24
   */
  catchUpLimit?: number;
  /** Options of the runners that run this schedule's containers (concurrency, groups, handlers, leases…). */
  runner?: ScheduleRunnerOptions;
}

/** A validated schedule, ready for a {@link Scheduler}. */
export interface ScheduleDefinition {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  readonly overlap: OverlapPolicy;
  readonly catchUp: CatchUpPolicy;
  readonly graceMs: number;
  readonly catchUpLimit: number;
  readonly container: (slot: Date) => SlotContainer | Promise<SlotContainer>;
  readonly runner: ScheduleRunnerOptions;
  /** The parsed expression (croner), paused: it never fires on its own. */
  readonly pattern: Cron;
}

/** Largest accepted `catchUpLimit`. */
export const MAX_CATCH_UP_LIMIT = 1000;

/**
 * Validates a schedule; nothing is written.
 * @throws {@link InvalidCronError} for an expression croner rejects or one that never fires
 * @throws {@link UnknownTimezoneError} for a time zone Intl does not know
 * @throws {@link InvalidScheduleError} for other bad options (also `catchUp: 'all'` with `overlap: 'skip'`); {@link InvalidOptionError} for bad runner options
 */
export function defineSchedule(options: ScheduleOptions): ScheduleDefinition {
  const name = options?.name;
  try {
    assertSafeName('schedule', name);
  } catch (error) {
    throw new InvalidScheduleError(String(name), (error as Error).message);
  }
  if (name.includes('@')) throw new InvalidScheduleError(name, 'the name must not contain "@" (it separates name and slot in slot ids)');
  const timezone = options.timezone ?? 'UTC';
  if (typeof timezone !== 'string' || !isKnownTimezone(timezone)) throw new UnknownTimezoneError(name, timezone);
  if (typeof options.cron !== 'string') throw new InvalidCronError(name, options.cron, 'must be a string');
  let pattern: Cron;
  try {
    pattern = new Cron(options.cron, { timezone, paused: true });
  } catch (error) {
    throw new InvalidCronError(name, options.cron, (error as Error).message);
  }
  if (!pattern.nextRun(new Date())) throw new InvalidCronError(name, options.cron, 'it never fires');
  if (typeof options.container !== 'function') throw new InvalidScheduleError(name, '"container" must be a function (slot: Date) => container definition');
  const catchUp = options.catchUp ?? 'latest';
  if (!['latest', 'all', 'none'].includes(catchUp)) {
    throw new InvalidScheduleError(name, `"catchUp" must be 'latest', 'all' or 'none', got ${JSON.stringify(catchUp)}`);
  }
  // Caught-up slots are claimed in one tick, oldest first: under `skip` every
  // one after the first would find the first still running and be skipped.
  const overlap = options.overlap ?? (catchUp === 'all' ? 'queue' : 'skip');
  if (!['skip', 'queue', 'parallel'].includes(overlap)) {
    throw new InvalidScheduleError(name, `"overlap" must be 'skip', 'queue' or 'parallel', got ${JSON.stringify(overlap)}`);
  }
  if (catchUp === 'all' && overlap === 'skip') {
    throw new InvalidScheduleError(
      name,
      `"catchUp: 'all'" runs every missed slot, but "overlap: 'skip'" would skip all of them but the first (they are due together); ` +
        `use overlap 'queue' (one after another, the default with catchUp 'all') or 'parallel', or catchUp 'latest'`,
    );
  }
  const graceMs = options.graceMs ?? 60_000;
  if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0) {
    throw new InvalidScheduleError(name, `"graceMs" must be a non-negative number of ms, got ${String(graceMs)}`);
  }
  const catchUpLimit = options.catchUpLimit ?? 24;
  if (!Number.isInteger(catchUpLimit) || catchUpLimit < 1 || catchUpLimit > MAX_CATCH_UP_LIMIT) {
    throw new InvalidScheduleError(name, `"catchUpLimit" must be an integer from 1 to ${MAX_CATCH_UP_LIMIT}, got ${String(catchUpLimit)}`);
  }
  const runner = { ...(options.runner ?? {}) };
  resolveRunnerOptions({ ...runner, container: name }); // throws InvalidOptionError naming the option
  return Object.freeze({ name, cron: options.cron, timezone, overlap, catchUp, graceMs, catchUpLimit, container: options.container, runner, pattern });
}

function isKnownTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}
