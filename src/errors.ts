/**
 * One error hierarchy for the whole package. Every error carries a stable
 * `code` so callers can branch without `instanceof` across module copies.
 */

/** Base class of every error thrown by persistent-task-status. */
export class TaskStatusError extends Error {
  /** Stable machine-readable code, e.g. `PTS_VALIDATION`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A container or task declaration is invalid; nothing was written. */
export class ValidationError extends TaskStatusError {
  constructor(message: string, code = 'PTS_VALIDATION') {
    super(code, message);
  }
}

/** Two tasks share one name. */
export class DuplicateTaskError extends ValidationError {
  constructor(readonly taskName: string, readonly container?: string) {
    super(
      `Task "${taskName}" is declared more than once${container ? ` in container "${container}"` : ''}`,
      'PTS_DUPLICATE_TASK',
    );
  }
}

/** A task depends on a task that does not exist. */
export class UnknownDependencyError extends ValidationError {
  constructor(readonly taskName: string, readonly dependency: string) {
    super(`Task "${taskName}" depends on unknown task "${dependency}"`, 'PTS_UNKNOWN_DEPENDENCY');
  }
}

/** The dependency graph has a cycle; `cycle` lists it, first name repeated last. */
export class CycleError extends ValidationError {
  constructor(readonly cycle: string[]) {
    super(`Dependency cycle: ${cycle.join(' -> ')}`, 'PTS_CYCLE');
  }
}

/** A container or task name MongoDB cannot store safely. */
export class InvalidNameError extends ValidationError {
  constructor(
    readonly kind: 'container' | 'task' | 'group' | 'handler' | 'schedule' | 'ledger',
    readonly value: unknown,
    reason: string,
  ) {
    super(`Invalid ${kind} name ${JSON.stringify(value)}: ${reason}`, 'PTS_INVALID_NAME');
  }
}

/** An option has a value outside its allowed range. */
export class InvalidOptionError extends ValidationError {
  constructor(readonly option: string, reason: string) {
    super(`Invalid option "${option}": ${reason}`, 'PTS_INVALID_OPTION');
  }
}

/** The declared container differs from the run persisted under the same name. */
export class DefinitionConflictError extends TaskStatusError {
  constructor(readonly container: string, readonly differences: string[]) {
    super(
      'PTS_DEFINITION_CONFLICT',
      `Container "${container}" was persisted with a different definition; cannot resume:\n- ${differences.join('\n- ')}`,
    );
  }
}

/** A container or task that should exist does not. */
export class NotFoundError extends TaskStatusError {
  constructor(readonly kind: 'container' | 'task' | 'handler', readonly target: string, detail = '') {
    super('PTS_NOT_FOUND', `Unknown ${kind} "${target}"${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * This runner's attempt was taken over by another runner (its lease expired),
 * so its writes are rejected. Handlers see it as the reason of their signal.
 */
export class LeaseLostError extends TaskStatusError {
  constructor(readonly container: string, readonly task: string, readonly fencingToken: number) {
    super(
      'PTS_LEASE_LOST',
      `Lease on task "${task}" of container "${container}" was lost (fencing token ${fencingToken} is stale); the write was rejected`,
    );
  }
}

/** A task attempt ran longer than its `timeoutMs`. */
export class TaskTimeoutError extends TaskStatusError {
  constructor(readonly task: string, readonly timeoutMs: number) {
    super('PTS_TIMEOUT', `Task "${task}" timed out after ${Math.round(timeoutMs)} ms`);
  }
}

/** Work was cancelled: the container was cancelled, or failed fast, or the runner stopped. */
export class CancelledError extends TaskStatusError {
  constructor(message = 'Cancelled') {
    super('PTS_CANCELLED', message);
  }
}

/** The runner is stopping; the attempt's lease is released so another runner can take the task. */
export class RunnerStoppedError extends CancelledError {
  constructor() {
    super('Runner stopped; the task was released');
    (this as { code: string }).code = 'PTS_RUNNER_STOPPED';
  }
}

/** A task was taken over after crashes more often than `maxRecoveries` allows. */
export class RecoveryLimitError extends TaskStatusError {
  constructor(readonly task: string, readonly recoveries: number) {
    super(
      'PTS_RECOVERY_LIMIT',
      `Task "${task}" was recovered from a lost runner ${recoveries} times; giving up (it may be crashing its process)`,
    );
  }
}

/**
 * A task's holder fenced itself off and gave the task back `lapses` times,
 * because its lease lapsed while the handler ran: almost always a handler
 * that blocks the event loop (synchronous work longer than the lease allows),
 * so no heartbeat could go out. The task fails instead of looping claim →
 * release → claim for ever. Run such work off the main thread
 * (`runInWorker`), or make the lease longer.
 */
export class LeaseLapseLimitError extends TaskStatusError {
  constructor(
    readonly task: string,
    readonly lapses: number,
    /** The lease of the runner that gave up, in ms. */
    readonly leaseMs: number,
  ) {
    super(
      'PTS_LEASE_LAPSE_LIMIT',
      `Task "${task}" lost its lease ${lapses} times while running (lease ${leaseMs} ms): its handler probably blocks the event loop, ` +
        'so no heartbeat can go out; giving up. Run CPU-bound work off the main thread with runInWorker(), or use a longer leaseMs',
    );
  }
}

/** Throw from a handler to fail the task at once, without retries. */
export class NonRetryableError extends TaskStatusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PTS_NON_RETRYABLE', message, options);
  }
}

/** Turns any thrown value into an Error, keeping the original as `cause`. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  const text = typeof value === 'string' ? value : safeStringify(value);
  return new Error(`Non-error thrown: ${text}`, { cause: value });
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A schedule declaration is invalid; nothing was written. */
export class InvalidScheduleError extends ValidationError {
  constructor(readonly schedule: string, reason: string, code = 'PTS_INVALID_SCHEDULE') {
    super(`Invalid schedule "${schedule}": ${reason}`, code);
  }
}

/** A schedule's cron expression cannot be parsed (by croner) or never fires. */
export class InvalidCronError extends InvalidScheduleError {
  constructor(schedule: string, readonly cron: unknown, reason: string) {
    super(schedule, `cron expression ${JSON.stringify(cron)}: ${reason}`, 'PTS_INVALID_CRON');
  }
}

/** A schedule names a time zone this Node.js runtime does not know (IANA names, e.g. "Europe/Berlin"). */
export class UnknownTimezoneError extends InvalidScheduleError {
  constructor(schedule: string, readonly timezone: unknown) {
    super(schedule, `unknown time zone ${JSON.stringify(timezone)} (use an IANA name such as "UTC" or "Europe/Berlin")`, 'PTS_UNKNOWN_TIMEZONE');
  }
}

/**
 * A schedule's container factory threw, or returned something that is not a
 * valid container definition, for one slot. Nothing was written for that slot.
 */
export class InvalidSlotDefinitionError extends InvalidScheduleError {
  constructor(schedule: string, readonly slot: Date, reason: string, options?: { cause?: unknown }) {
    super(schedule, `the container factory failed for slot ${slot.toISOString()}: ${reason}`, 'PTS_INVALID_SLOT_DEFINITION');
    if (options && 'cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

/**
 * A slot's container name (from the schedule's factory) already belongs to
 * another slot, or names a container that exists already and no slot created
 * (e.g. a factory naming containers by local hour meets the hour a DST change
 * repeats). The slot is ended `failed`; nothing of the other container changes.
 */
export class SlotContainerTakenError extends TaskStatusError {
  constructor(
    readonly schedule: string,
    readonly slot: Date,
    readonly container: string,
    /** The slot id that owns the container, or null when no slot created it. */
    readonly owner: string | null,
  ) {
    super(
      'PTS_SLOT_CONTAINER_TAKEN',
      `Slot ${slot.toISOString()} of schedule "${schedule}" maps to container "${container}", which ` +
        (owner ? `belongs to slot ${owner}` : 'exists already and was not created by a slot') +
        ': each slot needs its own container name (name containers by the slot\'s UTC instant)',
    );
  }
}

/** No schedule of that name (in this scheduler, or with a head in the database). */
export class UnknownScheduleError extends TaskStatusError {
  constructor(readonly schedule: string, detail = '') {
    super('PTS_UNKNOWN_SCHEDULE', `Unknown schedule "${schedule}"${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * A ledger item's claim expired and another claimer took the item over (see
 * `Ledger.claim`): stop working on it; the new holder does the work.
 */
export class LedgerClaimLostError extends TaskStatusError {
  constructor(readonly key: string, readonly generation: number, readonly holder: string) {
    super('PTS_LEASE_LOST', `The claim of ledger item ${key} (generation ${generation}) was lost; now held by ${holder}`);
  }
}

/** A ledger item is malformed (url, size in bytes, checksum); nothing was written. */
export class InvalidLedgerItemError extends ValidationError {
  constructor(readonly item: unknown, reason: string) {
    super(`Invalid ledger item: ${reason}`, 'PTS_INVALID_LEDGER_ITEM');
  }
}

/**
 * A task's output, checkpoint or input cannot be stored as given: BSON would
 * change it (a function, a bigint, a Map, ...), it nests deeper than MongoDB
 * stores, it is larger than a MongoDB document may be, or the server refuses
 * its kind (FerretDB v1: NaN, ±Infinity, nested arrays, MinKey, MaxKey, Code,
 * Decimal128). The message names the path of the bad value and the rule.
 * Nothing of it was written. The task fails without retries, since it would fail again.
 */
export class UnstorableValueError extends NonRetryableError {
  constructor(
    /** Which value was refused. */
    readonly value: 'output' | 'checkpoint' | 'input',
    readonly task: string,
    reason: string,
    /** BSON size of the refused document in bytes, when it was too large. */
    readonly sizeBytes: number | null = null,
    /** Largest document the server accepts, in bytes, when it was too large. */
    readonly limitBytes: number | null = null,
  ) {
    super(`The ${value} of task "${task}" cannot be stored: ${reason}`);
    (this as { code: string }).code = 'PTS_UNSTORABLE_VALUE';
  }
}

/** `run()` was called on a runner whose run already ended; create a new Runner to run again. */
export class RunnerFinishedError extends TaskStatusError {
  constructor(readonly container: string, readonly status: string) {
    super(
      'PTS_RUNNER_FINISHED',
      `This runner's run of container "${container}" already ended (${status}); create a new Runner with Runner.create() to run again`,
    );
  }
}

/** The MongoDB server could not be reached within the server-selection timeout. */
export class ServerUnreachableError extends TaskStatusError {
  constructor(
    /** Host list of the connection (credentials removed), or a description when it has none. */
    readonly host: string,
    /** How long it waited, in milliseconds. */
    readonly timeoutMs: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('PTS_SERVER_UNREACHABLE', `Cannot reach MongoDB at ${host}: timed out after ${timeoutMs} ms (${detail})`, options);
  }
}
