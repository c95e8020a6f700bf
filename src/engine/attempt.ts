import { backoffDelayMs, type ResolvedTaskOptions } from '../definition/options.js';
import type { DynamicTaskSpec, TaskContext, TaskHandler } from '../definition/types.js';
import {
  CancelledError,
  coerceError,
  LeaseLostError,
  NonRetryableError,
  NotFoundError,
  RunnerStoppedError,
  TaskTimeoutError,
  UnstorableValueError,
} from '../errors.js';
import { findUnstorable } from '../definition/storable.js';
import type { Claim, PersistedError, TaskStore } from '../store/types.js';
import { AttemptWriter } from './attempt-writer.js';
import type { RunnerEvents } from './events.js';

/** Everything one attempt needs; assembled by the runner after a claim. */
export interface AttemptInput {
  store: TaskStore;
  events: RunnerEvents;
  claim: Claim;
  handler: TaskHandler<any, unknown>;
  options: ResolvedTaskOptions;
  input: unknown;
  deps: Record<string, unknown>;
  lastCheckpoint: unknown;
  /** Failed attempts before this one. */
  failuresBefore: number;
  recovered: boolean;
  leaseMs: number;
  heartbeatMs: number;
  checkpointIntervalMs: number;
  /** Aborted by the runner: cancel, fail-fast or stop; its reason says which. */
  runnerSignal: AbortSignal;
  addTasks: (specs: DynamicTaskSpec[]) => Promise<{ added: string[] }>;
}

/**
 * Runs one claimed attempt to its end and records the outcome at the claim's
 * next log position. If the lease was taken over meanwhile, nothing is
 * recorded (the write is fenced out) and `task:lease-lost` is emitted.
 */
export async function executeAttempt(a: AttemptInput): Promise<void> {
  const { claim, events, options } = a;
  const ids = { container: claim.container, task: claim.task, attempt: claim.attempt };
  const controller = new AbortController();
  const forward = () => controller.abort(a.runnerSignal.reason);
  if (a.runnerSignal.aborted) forward();
  else a.runnerSignal.addEventListener('abort', forward, { once: true });

  const writer = new AttemptWriter(
    a.store,
    claim,
    a.checkpointIntervalMs,
    (lost) => controller.abort(lost),
    (error) => {
      // A checkpoint the store refused (too large) would be refused again: the
      // attempt ends with it, and it is recorded as the task's failure.
      if (error instanceof UnstorableValueError) return controller.abort(error);
      events.emit('runner:error', { error, context: `writing attempt state of task "${claim.task}"` });
    },
  );
  const heartbeat = setInterval(() => {
    writer.heartbeat(new Date(Date.now() + a.leaseMs)).catch(() => undefined);
  }, a.heartbeatMs);
  const timeout =
    options.timeoutMs > 0
      ? setTimeout(() => controller.abort(new TaskTimeoutError(claim.task, options.timeoutMs)), options.timeoutMs)
      : null;

  const ctx: TaskContext = {
    container: claim.container,
    task: claim.task,
    attempt: claim.attempt,
    runnerId: claim.runnerId,
    input: a.input,
    deps: a.deps,
    lastCheckpoint: a.lastCheckpoint,
    signal: controller.signal,
    progress(fraction, statusText) {
      const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      events.emit('task:progress', { ...ids, fraction: clamped, statusText: statusText ?? '' });
      return writer.queue(statusText === undefined ? { progress: clamped } : { progress: clamped, statusText });
    },
    checkpoint(state) {
      const bad = findUnstorable(state, 'checkpoint');
      if (bad) return Promise.reject(new UnstorableValueError('checkpoint', claim.task, `${bad.path} ${bad.reason}`));
      return writer.queue({ checkpoint: state === undefined ? null : state });
    },
    addTasks: (specs) => a.addTasks(specs),
  };

  events.emit('task:started', { ...ids, runnerId: claim.runnerId, recovered: a.recovered });
  const startedAt = Date.now();
  let outcome: { ok: true; output: unknown } | { ok: false; error: Error };
  try {
    const output = await untilAborted(Promise.resolve().then(() => a.handler(ctx)), controller.signal);
    const bad = findUnstorable(output, 'output');
    outcome = bad
      ? { ok: false, error: new UnstorableValueError('output', claim.task, `${bad.path} ${bad.reason}`) }
      : { ok: true, output: output === undefined ? null : output };
  } catch (error) {
    outcome = { ok: false, error: coerceError(error) };
  } finally {
    clearInterval(heartbeat);
    if (timeout) clearTimeout(timeout);
    a.runnerSignal.removeEventListener('abort', forward);
  }

  const leaseLost = () => events.emit('task:lease-lost', { ...ids, fencingToken: claim.token });
  try {
    // The newest checkpoint must be persisted before the outcome, so a retry sees it.
    await writer.flush();
  } catch (error) {
    if (error instanceof LeaseLostError) return leaseLost();
  } finally {
    writer.close();
  }

  try {
    if (outcome.ok) {
      try {
        await a.store.finishAttempt(claim, { kind: 'succeeded', output: outcome.output });
        events.emit('task:succeeded', { ...ids, durationMs: Date.now() - startedAt, output: outcome.output });
        return;
      } catch (error) {
        if (error instanceof LeaseLostError) throw error;
        // An output MongoDB cannot store: record it as this attempt's failure
        // (without retries when it is known to fail again, e.g. too large).
        outcome = {
          ok: false,
          error:
            error instanceof UnstorableValueError
              ? error
              : new Error(`Could not persist the output: ${(error as Error).message}`, { cause: error }),
        };
      }
    }
    // When the signal fired, its reason (timeout, cancel, stop, lost lease) is
    // the cause, whatever the handler threw while unwinding.
    const reason = controller.signal.aborted ? coerceError(controller.signal.reason) : outcome.error;
    if (reason instanceof LeaseLostError) return leaseLost();
    await recordFailure(a, reason, ids);
  } catch (error) {
    if (error instanceof LeaseLostError) return leaseLost();
    events.emit('runner:error', { error: coerceError(error), context: `recording the outcome of task "${claim.task}"` });
  }
}

async function recordFailure(a: AttemptInput, error: Error, ids: { container: string; task: string; attempt: number }) {
  const { claim, events, options } = a;
  if (error instanceof NotFoundError) return; // the container was deleted under us
  if (error instanceof RunnerStoppedError) {
    await a.store.finishAttempt(claim, { kind: 'released' });
    events.emit('task:released', ids);
    return;
  }
  if (error instanceof CancelledError) {
    await a.store.finishAttempt(claim, { kind: 'cancelled', reason: error.message });
    events.emit('task:cancelled', { ...ids, reason: error.message });
    return;
  }
  const persisted = toPersistedError(error, claim.attempt);
  const failures = a.failuresBefore + 1;
  const retryable = !(error instanceof NonRetryableError) && failures <= options.retries;
  if (retryable) {
    const delayMs = backoffDelayMs(options.backoff, failures);
    const retryAt = new Date(Date.now() + delayMs);
    await a.store.finishAttempt(claim, { kind: 'failed', error: persisted, retryAt });
    events.emit('task:retry', { ...ids, error: persisted, retryAt, delayMs });
  } else {
    await a.store.finishAttempt(claim, { kind: 'failed', error: persisted, retryAt: null });
    events.emit('task:failed', { ...ids, error: persisted });
  }
}

/** Converts an error into its persisted form (message, stack, code). */
export function toPersistedError(error: Error, attempt: number): PersistedError {
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: error.message,
    code: typeof code === 'string' || typeof code === 'number' ? String(code) : null,
    stack: error.stack ?? null,
    attempt,
    at: new Date(),
  };
}

/** Settles with the promise, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
