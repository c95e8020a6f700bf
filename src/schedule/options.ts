import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import { InvalidOptionError } from '../errors.js';
import type { ScheduleStore } from '../store/schedule-types.js';
import type { TaskStore } from '../store/types.js';
import type { Clock } from './clock.js';
import type { ScheduleDefinition } from './define.js';

/** Options of {@link Scheduler.create}. */
export interface SchedulerOptions {
  /** Schedules from {@link defineSchedule}; names must be unique. */
  schedules: ScheduleDefinition[];
  /** Mongoose connection to use. @defaultValue mongoose's default connection */
  connection?: Connection;
  /**
   * The clock slots are judged on, shared by every scheduler of a deployment.
   * Inject one in tests only, and the same one in every scheduler of the test.
   * @defaultValue the database server's clock (`hello.localTime`, read each
   * tick); this machine's clock when the server does not tell its time
   */
  clock?: Clock;
  /** Identifies this scheduler in slot claims and its runners' claims. @defaultValue `<hostname>:<pid>:<random>` */
  runnerId?: string;
  /** Prefix of the collection names (shared with the runners). @defaultValue 'pts' */
  collectionPrefix?: string;
  /**
   * Interval between ticks after `start()`, in ms. Each tick reads the clock,
   * and each schedule's head (one exact `_id` read): a trigger request or a
   * graceful stop's handover written there is served at the next tick.
   * @defaultValue 1000
   */
  tickMs?: number;
  /**
   * Interval between recovery passes after `start()`, in ms: a slot left
   * unfinished by a scheduler that died while this one kept running gets a
   * runner from this one once its container shows no live runner (every
   * running task's holder judged lost on the database server's clock, see
   * src/store/lease-health.ts). A scheduler that stops gracefully says so on
   * the head, and the others take its slots over at their next tick instead.
   * @defaultValue 60000
   */
  recoverMs?: number;
  /**
   * Also run the slots that another scheduler runs, beside it: a container
   * takes several runners safely, so each machine of a deployment helps with
   * every running slot (the EPF job on several machines). At each tick, a slot
   * found claimed and started elsewhere gets a runner here too; recovery
   * passes attach one to every unfinished started slot, not only to those
   * whose runners died. Without it, a slot claimed elsewhere runs here only
   * after its scheduler stopped or died.
   * @defaultValue false
   */
  join?: boolean;
  /** Ready stores instead of a connection (for tests of other backends). */
  stores?: { tasks: TaskStore; schedules: ScheduleStore };
}

/** {@link SchedulerOptions} validated, with defaults. */
export interface ResolvedSchedulerOptions {
  schedules: ScheduleDefinition[];
  clock: Clock | null;
  runnerId: string;
  tickMs: number;
  recoverMs: number;
  join: boolean;
}

/**
 * Validates the options once, at construction.
 * @throws {@link InvalidOptionError} naming the option; for duplicate schedule names
 */
export function resolveSchedulerOptions(options: SchedulerOptions): ResolvedSchedulerOptions {
  const schedules = options?.schedules;
  if (!Array.isArray(schedules) || schedules.length === 0) {
    throw new InvalidOptionError('schedules', 'must be a non-empty array of defineSchedule(...) results');
  }
  const seen = new Set<string>();
  for (const s of schedules) {
    if (typeof s?.pattern?.nextRun !== 'function') throw new InvalidOptionError('schedules', 'each must come from defineSchedule(...)');
    if (seen.has(s.name)) throw new InvalidOptionError('schedules', `schedule "${s.name}" is given more than once`);
    seen.add(s.name);
  }
  const clock = options.clock ?? null;
  if (clock !== null && typeof clock.now !== 'function') throw new InvalidOptionError('clock', 'must have a now(): Date method');
  const tickMs = positiveMs('tickMs', options.tickMs ?? 1000);
  const recoverMs = positiveMs('recoverMs', options.recoverMs ?? 60_000);
  const runnerId = options.runnerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  if (options.join !== undefined && typeof options.join !== 'boolean') throw new InvalidOptionError('join', `must be a boolean, got ${String(options.join)}`);
  return { schedules, clock, runnerId, tickMs, recoverMs, join: options.join ?? false };
}

function positiveMs(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(name, `must be a positive number of ms, got ${String(value)}`);
  }
  return value;
}
