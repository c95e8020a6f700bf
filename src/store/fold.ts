import type { Transition } from './transition.js';
import type { PersistedError, TaskState } from './types.js';

/** The errors of a task that has none (shared: states are never changed in place, a fold makes a new one). */
const NO_ERRORS: PersistedError[] = Object.freeze([]) as unknown as PersistedError[];

/** The state of a task that has no transitions yet. */
export function initialTaskState(): TaskState {
  return {
    status: 'pending',
    token: 0,
    attempt: 0,
    failures: 0,
    recoveries: 0,
    lapses: 0,
    notBefore: null,
    runnerId: null,
    leaseUntil: null,
    leaseMs: null,
    heartbeatMs: null,
    leaseRenewedAt: null,
    heartbeats: 0,
    progress: 0,
    progressAt: null,
    startProgress: 0,
    checkpointProgress: 0,
    statusText: '',
    checkpoint: undefined,
    output: null,
    lastError: null,
    errors: NO_ERRORS,
    startedAt: null,
    firstStartedAt: null,
    endedAt: null,
    durationMs: null,
    reason: null,
    cause: null,
    claimToken: null,
  };
}

/**
 * Derives a task's state from its transition log (sorted by token). The log is
 * the source of truth, so state never depends on counters that concurrent
 * writers increment: it can always be derived again. With `from`, folds the
 * entries after `from.token` onto that state (the caller passes only those).
 */
export function foldTransitions(log: readonly Transition[], from?: TaskState): TaskState {
  // Continuing from a state folded earlier (entries after its token): a copy, never the original.
  return foldInto(from ? materialize(from) : initialTaskState(), log);
}

/**
 * Folds entries (sorted by token) onto `s` in place and returns it: for a
 * reader that owns the state it folds into (a log read as it streams in).
 */
export function foldInto(s: TaskState, log: readonly Transition[]): TaskState {
  for (const t of log) {
    s.token = t.token;
    if (t.kind !== 'claimed' && t.kind !== 'edited') s.claimToken = null;
    switch (t.kind) {
      case 'claimed':
        if (s.status === 'running') s.recoveries += 1;
        s.status = 'running';
        s.claimToken = t.token;
        s.cause = null;
        s.attempt = t.attempt ?? s.attempt + 1;
        s.runnerId = t.runnerId ?? null;
        s.leaseUntil = t.leaseUntil ?? null;
        s.leaseMs = t.leaseMs ?? null;
        s.heartbeatMs = t.heartbeatMs ?? null;
        s.leaseRenewedAt = t.leaseRenewedAt ?? null;
        s.heartbeats = t.heartbeats ?? 0;
        s.progress = t.progress ?? 0;
        s.startProgress = t.startProgress ?? 0;
        s.progressAt = t.progressAt ?? null;
        s.checkpointProgress = t.checkpointProgress ?? s.startProgress;
        s.statusText = t.statusText ?? '';
        // Each claim carries the checkpoint it started from, so writes that
        // reach an older claim entry late (a fenced-off attempt) are never read.
        s.checkpoint = t.checkpoint ?? undefined;
        s.startedAt = t.at;
        s.firstStartedAt ??= t.at;
        s.notBefore = null;
        s.endedAt = null;
        s.durationMs = null;
        break;
      case 'succeeded':
        s.status = 'succeeded';
        s.output = t.output ?? null;
        s.progress = 1;
        endAttempt(s, t.at);
        break;
      case 'failed':
        s.failures += 1;
        if (t.error) {
          s.lastError = t.error;
          s.errors = [...s.errors, t.error];
        }
        s.status = t.retryAt ? 'pending' : 'failed';
        s.notBefore = t.retryAt ?? null;
        endAttempt(s, t.at);
        break;
      case 'released':
        // A holder that fenced itself off says why; those releases are limited.
        if (t.reason) s.lapses += 1;
        s.status = 'pending';
        endAttempt(s, t.at);
        break;
      case 'cancelled':
      case 'skipped':
        if (s.status === 'running') endAttempt(s, t.at);
        else s.endedAt = t.at;
        s.status = t.kind;
        s.reason = t.reason ?? null;
        s.cause = t.cause ?? null;
        break;
      case 'edited':
        applyEdit(s, t.set ?? {});
        break;
      case 'reset':
        s.status = 'pending';
        s.failures = 0;
        s.recoveries = 0;
        s.lapses = 0;
        s.notBefore = null;
        s.reason = null;
        s.cause = null;
        s.endedAt = null;
        s.durationMs = null;
        s.progress = 0;
        break;
    }
  }
  return s;
}

/** A copy of a state with every field as own property (a compact state keeps some on its prototype). */
function materialize(from: TaskState): TaskState {
  const s = initialTaskState() as unknown as Record<string, unknown>;
  for (const key of Object.keys(s)) s[key] = (from as unknown as Record<string, unknown>)[key];
  return s as unknown as TaskState;
}

const EDITABLE_FIELDS = ['progress', 'statusText', 'checkpoint', 'attempt', 'startedAt', 'endedAt', 'leaseUntil', 'durationMs'] as const;

function applyEdit(s: TaskState, set: NonNullable<Transition['set']>): void {
  if (set.status !== undefined) {
    s.status = set.status;
    // An edit that moves the status ends the engine's claim on the task.
    s.claimToken = null;
    if (set.status !== 'running') s.leaseUntil = null;
    if (set.status === 'succeeded') s.progress = 1;
  }
  // The other fields of an edit carry the names of the state they set.
  for (const key of EDITABLE_FIELDS) {
    if (set[key] !== undefined) (s as unknown as Record<string, unknown>)[key] = set[key];
  }
  // A lease set by hand is not a renewal the server stamped: it is judged by its written expiry.
  if (set.status !== undefined || set.leaseUntil !== undefined) s.leaseRenewedAt = null;
  // A duration given with the edit wins; otherwise it follows the times when
  // they change, and a duration set earlier stays until then.
  const timesChanged = set.status !== undefined || set.startedAt !== undefined || set.endedAt !== undefined;
  if (set.durationMs === undefined && timesChanged) {
    s.durationMs = s.startedAt && s.endedAt ? s.endedAt.getTime() - s.startedAt.getTime() : null;
  }
}

function endAttempt(s: TaskState, at: Date): void {
  s.leaseUntil = null;
  s.leaseRenewedAt = null;
  s.endedAt = at;
  s.durationMs = s.startedAt ? at.getTime() - s.startedAt.getTime() : null;
}
