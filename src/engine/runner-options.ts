import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { ContainerBuilder } from '../definition/define.js';
import type { ContainerDefinition, TaskHandler } from '../definition/types.js';
import { MAX_TIMER_MS, timerTooLong } from '../definition/options.js';
import { InvalidOptionError } from '../errors.js';
import type { TaskStore } from '../store/types.js';
import type { MongoStoreOptions } from '../store/mongo/mongo-store.js';

/** Options of {@link Runner.create}. */
export interface RunnerOptions {
  /** What to run: a declared container, or the name of a persisted one (tasks bound through `handlers`). */
  container: ContainerDefinition | ContainerBuilder<any> | string;
  /** Mongoose connection to use. @defaultValue mongoose's default connection */
  connection?: Connection;
  /** A ready store instead of a connection (for tests of other backends). */
  store?: TaskStore;
  /** Prefix of the collection names. @defaultValue 'pts' */
  collectionPrefix?: string;
  /** Handlers by key, for persisted tasks not declared in code. */
  handlers?: Record<string, TaskHandler<any, unknown>>;
  /** Attempts running at once in this runner. @defaultValue 4 */
  concurrency?: number;
  /**
   * Limits per concurrency group (task option `group`): a number is a limit
   * per runner; `{ concurrency, global }` sets a limit per runner and/or one
   * across every runner of the container, held in the database (see
   * docs/concepts.md, "Limits across runners"). @defaultValue {}
   */
  groups?: Record<string, number | GroupLimit>;
  /**
   * Attempts running at once across every runner of the container, held in
   * the database (slot documents). Runners of one container should agree on
   * it: each takes slots below its own value. @defaultValue none
   */
  globalConcurrency?: number;
  /**
   * How long `Runner.create` waits for the connection to reach a server before
   * failing with a ServerUnreachableError naming the host, in ms.
   * @defaultValue 5000
   */
  serverSelectionTimeoutMs?: number;
  /** How long a claim stays valid without a heartbeat, in ms (at most 2^31-1, as every timer option). @defaultValue 30000 */
  leaseMs?: number;
  /** Interval between heartbeats of a running attempt. @defaultValue leaseMs / 3 */
  heartbeatMs?: number;
  /**
   * Interval (ms) between reads of the container document and of the tasks
   * running elsewhere: how soon a cancel, a retry or another runner's
   * outcome is seen. @defaultValue 1000
   */
  pollMs?: number;
  /** Minimum interval between progress/checkpoint writes of one attempt. @defaultValue 1000 */
  checkpointIntervalMs?: number;
  /**
   * Takeovers of one task after lost runners before it fails with
   * RecoveryLimitError; also how many times a holder may fence itself off
   * and give the task back (its lease lapsed: a blocked event loop, the
   * database out of reach) before it fails with LeaseLapseLimitError. @defaultValue 5
   */
  maxRecoveries?: number;
  /** How long `stop()` waits for running attempts before releasing them. @defaultValue 30000 */
  stopTimeoutMs?: number;
  /**
   * How long, in ms of this runner's monotonic time, the holder of an
   * affinity key (see `TaskOptions.affinity`) may show no running task in
   * the container while a task of its key is ready, before this runner takes
   * the key over. A holder that is alive claims its next task at once, or
   * runs others meanwhile. @defaultValue leaseMs
   */
  affinityWaitMs?: number;
  /** Aborting it stops the runner gracefully, like `stop()`. */
  signal?: AbortSignal;
  /**
   * OpenTelemetry spans (a session span per run, a span per attempt with the
   * handler inside it, links between attempts of a task) when the optional
   * peer `@opentelemetry/api` is installed; they are recorded only once an
   * SDK is registered. See docs/dashboard.md. @defaultValue true
   */
  tracing?: boolean;
  /** Identifies this runner in claims and events. @defaultValue `<hostname>:<pid>:<random>` */
  runnerId?: string;
  /**
   * Wall clock for the times this runner writes (claims, lease expiries shown
   * by `pts status`, retry times), in ms since the epoch; for tests. Leases are
   * never judged by it: holders and readers use their own monotonic clocks.
   * @defaultValue Date
   */
  clock?: { now(): number };
  /** Deadline of each database operation of the engine, in ms; see MongoStoreOptions. @defaultValue 10000 */
  operationTimeoutMs?: number;
  /** Write concern of the engine's writes (MongoStoreOptions). @defaultValue { w: 'majority' } */
  writeConcern?: MongoStoreOptions['writeConcern'];
  /** Read concern of the engine's reads (MongoStoreOptions). @defaultValue 'majority' */
  readConcern?: MongoStoreOptions['readConcern'];
  /** Read preference of the engine's reads (MongoStoreOptions). @defaultValue 'primary' */
  readPreference?: MongoStoreOptions['readPreference'];
}

/** A concurrency group's limits (see {@link RunnerOptions.groups}). */
export interface GroupLimit {
  /** Attempts of the group running at once in this runner. @defaultValue no limit but `concurrency` */
  concurrency?: number;
  /** Attempts of the group running at once across every runner of the container (slot documents). @defaultValue none */
  global?: number;
  /**
   * Starts of the group's attempts across every runner of the container: at
   * most `max` in each window of `perMs` ms of the database server's clock
   * (fixed windows; see docs/concepts.md, "Rate limits"). @defaultValue none
   */
  rate?: RateLimit;
}

/** A rate limit: at most `max` attempts start per fixed window of `perMs` ms (see {@link GroupLimit.rate}). */
export interface RateLimit {
  /** Starts per window, a positive integer. */
  max: number;
  /** Length of a window in ms, a positive integer of at most 2^31-1. */
  perMs: number;
}

/** Runner options with defaults filled in and validated. */
export interface ResolvedRunnerOptions {
  concurrency: number;
  /** Per-runner limits by group. */
  groups: Record<string, number>;
  /** Limits across runners by group. */
  globalGroups: Record<string, number>;
  /** Limit across runners of every attempt of the container, or null. */
  globalConcurrency: number | null;
  /** Rate limits across runners by group. */
  rateGroups: Record<string, RateLimit>;
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  checkpointIntervalMs: number;
  maxRecoveries: number;
  stopTimeoutMs: number;
  affinityWaitMs: number;
  serverSelectionTimeoutMs: number;
  runnerId: string;
  clock: { now(): number };
}

/** Validates options once, with messages that name the option. */
export function resolveRunnerOptions(o: RunnerOptions): ResolvedRunnerOptions {
  const leaseMs = positive('leaseMs', o.leaseMs ?? 30_000);
  const heartbeatMs = positive('heartbeatMs', o.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 3)));
  if (heartbeatMs >= leaseMs) throw new InvalidOptionError('heartbeatMs', `must be below leaseMs (${leaseMs})`);
  const concurrency = o.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionError('concurrency', `must be a positive integer, got ${String(concurrency)}`);
  }
  const groups: Record<string, number> = {};
  const globalGroups: Record<string, number> = {};
  const rateGroups: Record<string, RateLimit> = {};
  if (o.groups !== undefined && (o.groups === null || typeof o.groups !== 'object' || Array.isArray(o.groups))) {
    throw new InvalidOptionError('groups', 'must be an object of group names to limits');
  }
  for (const [g, limit] of Object.entries(o.groups ?? {})) {
    if (typeof limit === 'number') {
      groups[g] = positiveInteger(`groups.${g}`, limit);
      continue;
    }
    if (limit === null || typeof limit !== 'object' || Array.isArray(limit)) {
      throw new InvalidOptionError(`groups.${g}`, `must be a positive integer or { concurrency?, global?, rate? }, got ${JSON.stringify(limit)}`);
    }
    const unknown = Object.keys(limit).filter((k) => k !== 'concurrency' && k !== 'global' && k !== 'rate');
    if (unknown.length > 0) throw new InvalidOptionError(`groups.${g}`, `unknown key "${unknown[0]}" (known: concurrency, global, rate)`);
    if (limit.concurrency === undefined && limit.global === undefined && limit.rate === undefined) {
      throw new InvalidOptionError(`groups.${g}`, 'must set concurrency (per runner), global (across runners), rate ({ max, perMs }), or several');
    }
    if (limit.concurrency !== undefined) groups[g] = positiveInteger(`groups.${g}.concurrency`, limit.concurrency);
    if (limit.global !== undefined) globalGroups[g] = positiveInteger(`groups.${g}.global`, limit.global);
    if (limit.rate !== undefined) rateGroups[g] = rateLimit(`groups.${g}.rate`, limit.rate);
  }
  const globalConcurrency = o.globalConcurrency === undefined ? null : positiveInteger('globalConcurrency', o.globalConcurrency);
  const maxRecoveries = o.maxRecoveries ?? 5;
  if (!Number.isInteger(maxRecoveries) || maxRecoveries < 0) {
    throw new InvalidOptionError('maxRecoveries', 'must be a non-negative integer');
  }
  return {
    concurrency,
    groups,
    globalGroups,
    globalConcurrency,
    rateGroups,
    leaseMs,
    heartbeatMs,
    pollMs: positive('pollMs', o.pollMs ?? 1000),
    checkpointIntervalMs: nonNegative('checkpointIntervalMs', o.checkpointIntervalMs ?? 1000),
    maxRecoveries,
    stopTimeoutMs: nonNegative('stopTimeoutMs', o.stopTimeoutMs ?? 30_000),
    affinityWaitMs: nonNegative('affinityWaitMs', o.affinityWaitMs ?? leaseMs),
    serverSelectionTimeoutMs: positive('serverSelectionTimeoutMs', o.serverSelectionTimeoutMs ?? 5000),
    runnerId: o.runnerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    clock: clockOption(o.clock),
  };
}

function positiveInteger(option: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidOptionError(option, `must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function rateLimit(option: string, v: unknown): RateLimit {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidOptionError(option, `must be { max, perMs }, got ${JSON.stringify(v)}`);
  const unknown = Object.keys(v).filter((k) => k !== 'max' && k !== 'perMs');
  if (unknown.length > 0) throw new InvalidOptionError(option, `unknown key "${unknown[0]}" (known: max, perMs)`);
  const { max, perMs } = v as Partial<RateLimit>;
  const perMsOk = positiveInteger(`${option}.perMs`, perMs);
  if (perMsOk > MAX_TIMER_MS) throw new InvalidOptionError(`${option}.perMs`, timerTooLong(perMsOk));
  return { max: positiveInteger(`${option}.max`, max), perMs: perMsOk };
}

function clockOption(clock: RunnerOptions['clock']): { now(): number } {
  if (clock === undefined) return Date;
  if (typeof clock?.now !== 'function') throw new InvalidOptionError('clock', 'must be an object with a now() method returning ms since the epoch');
  return clock;
}

function positive(option: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidOptionError(option, `must be a positive number, got ${String(v)}`);
  }
  if (v > MAX_TIMER_MS) throw new InvalidOptionError(option, timerTooLong(v));
  return v;
}

function nonNegative(option: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new InvalidOptionError(option, `must be a non-negative number, got ${String(v)}`);
  }
  if (v > MAX_TIMER_MS) throw new InvalidOptionError(option, timerTooLong(v));
  return v;
}
