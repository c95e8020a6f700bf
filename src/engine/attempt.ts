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
import { isTransientError } from '../store/retry.js';
import type { AttemptOutcome, Claim, PersistedError, TaskStore } from '../store/types.js';
import { AttemptWriter } from './attempt-writer.js';
import type { RunnerEvents } from './events.js';
import { fenceMarginMs, LeaseFence } from './lease-fence.js';
import type { LoopWatch } from './loop-watch.js';

/** Largest error message or stack stored per attempt, in bytes (UTF-8); longer ones are cut with a mark. */
export const MAX_STORED_ERROR_TEXT_BYTES = 64 * 1024;

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
  /** Monotonic time (`performance.now()`, ms) at which the claim was sent: the lease counts from there. */
  claimSentAt: number;
  /** Wall clock for the times written (leases, retry times), in ms since the epoch. */
  clock: { now(): number };
  addTasks: (specs: DynamicTaskSpec[]) => Promise<{ added: string[] }>;
  /** The runner's event-loop watch: the lease is checked at the first turn after a delay. */
  loopWatch: LoopWatch;
  /** Called once the handler has settled, before its outcome is written; `succeeded` when it returned a storable output. */
  onHandlerSettled?: (succeeded: boolean) => void;
}

/** An outcome this attempt wrote durably, and the time written with it. */
export interface RecordedOutcome {
  outcome: AttemptOutcome;
  at: Date;
}

/**
 * Runs one claimed attempt to its end and records the outcome at the claim's
 * next log position; returns what it recorded. If the lease was taken over
 * meanwhile, nothing is recorded (the write is fenced out), `task:lease-lost`
 * is emitted and it returns null (also when the outcome could not be written).
 */
export async function executeAttempt(a: AttemptInput): Promise<RecordedOutcome | null> {
  const { claim, events, options } = a;
  const ids = { container: claim.container, task: claim.task, attempt: claim.attempt };
  const controller = new AbortController();
  const forward = () => controller.abort(a.runnerSignal.reason);
  if (a.runnerSignal.aborted) forward();
  else a.runnerSignal.addEventListener('abort', forward, { once: true });

  // Set when this attempt fenced itself off: its lease can no longer be proven.
  let selfFenced: LeaseLostError | null = null;
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
    (sentAt) => fence.confirm(sentAt),
  );
  const fence = new LeaseFence(a.claimSentAt, a.leaseMs, fenceMarginMs(a.leaseMs, a.heartbeatMs), () => {
    selfFenced = new LeaseLostError(claim.container, claim.task, claim.token);
    writer.fence(selfFenced);
    controller.abort(selfFenced);
  });
  // The longest the event loop stood still while this attempt ran (ms).
  let blockedMs = 0;
  const unwatch = a.loopWatch.watch((delayMs) => {
    blockedMs = Math.max(blockedMs, delayMs);
    fence.check();
  });
  // Heartbeats go on until the outcome is durable (or the attempt gave up).
  const heartbeat = setInterval(() => {
    writer.heartbeat(new Date(a.clock.now() + a.leaseMs)).catch(() => undefined);
  }, a.heartbeatMs);
  const timeout =
    options.timeoutMs > 0
      ? setTimeout(() => controller.abort(new TaskTimeoutError(claim.task, options.timeoutMs)), options.timeoutMs)
      : null;
  let recorded: RecordedOutcome | null = null;
  try {
    await runAndRecord();
  } finally {
    clearInterval(heartbeat);
    fence.stop();
    unwatch();
  }
  return recorded;

  async function runAndRecord(): Promise<void> {
    // Every ctx.* call checks the lease first, synchronously: a handler that
    // blocks the event loop between calls learns there that its lease lapsed
    // (`ctx.signal.aborted` turns true), before it acts as the holder again.
    const ctx: TaskContext = {
      container: claim.container,
      task: claim.task,
      attempt: claim.attempt,
      runnerId: claim.runnerId,
      input: a.input,
      deps: a.deps,
      lastCheckpoint: a.lastCheckpoint,
      get signal() {
        fence.check();
        return controller.signal;
      },
      progress(fraction, statusText, counts) {
        fence.check();
        const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
        events.emit('task:progress', { ...ids, fraction: clamped, statusText: statusText ?? '', ...(counts ? { counts } : {}) });
        return handled(writer.queue(statusText === undefined ? { progress: clamped } : { progress: clamped, statusText }));
      },
      checkpoint(state) {
        fence.check();
        const bad = findUnstorable(state, 'checkpoint');
        if (bad) return handled(Promise.reject(new UnstorableValueError('checkpoint', claim.task, `${bad.path} ${bad.reason}`)));
        return handled(writer.queue({ checkpoint: state === undefined ? null : state }));
      },
      addTasks: (specs) => {
        fence.check();
        // Tasks staged by an attempt that already ended would join the container unasked.
        const refused = writer.refusal();
        return handled(refused ? Promise.reject(refused) : a.addTasks(specs));
      },
    };

    events.emit('task:started', { ...ids, runnerId: claim.runnerId, recovered: a.recovered });
    const startedAt = performance.now();
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
      if (timeout) clearTimeout(timeout);
      a.runnerSignal.removeEventListener('abort', forward);
    }
    a.onHandlerSettled?.(outcome.ok);

    const leaseLost = async () => {
      events.emit('task:lease-lost', { ...ids, fencingToken: claim.token });
      // Fenced by our own clock, not by a takeover we saw: give the task back at
      // once when nobody took it (a write at our outcome position is exclusive).
      if (selfFenced) {
        try {
          const at = new Date(a.clock.now());
          // Counted in the task's lapses: a handler that keeps blocking the loop fails with LeaseLapseLimitError.
          const lapsed =
            `the lease (${a.leaseMs} ms) could no longer be proven` +
            (blockedMs >= a.heartbeatMs ? `; the event loop stood still for up to ${Math.round(blockedMs)} ms` : '');
          const outcome = { kind: 'released', lapsed } as const;
          await a.store.finishAttempt(claim, outcome, at);
          recorded = { outcome, at };
          events.emit('task:released', ids);
        } catch {
          // taken over meanwhile, or the database is still away: readers take it over
        }
      }
    };
    try {
      // The newest checkpoint must be persisted before the outcome, so a retry sees it.
      await writer.flush();
    } catch (error) {
      if (error instanceof LeaseLostError) return leaseLost();
    } finally {
      writer.close();
    }

    /** Writes the outcome, retrying database errors for as long as the lease is ours. */
    // One time for every try of the write: a retry after a lost reply is the same entry.
    let tried: { output: unknown; at: Date } | null = null;
    const record = async (o: AttemptOutcome) => {
      const at = new Date(a.clock.now());
      if (o.kind === 'succeeded') tried = { output: o.output, at };
      const stood = await durably(a, fence, () => a.store.finishAttempt(claim, o, at));
      if (stood === o.kind || stood !== 'succeeded' || !tried) {
        recorded = { outcome: o, at };
        return;
      }
      // Our success landed after all (a try whose reply was lost): it stands.
      recorded = { outcome: { kind: 'succeeded', output: tried.output }, at: tried.at };
      throw new SuccessStood(tried.output);
    };
    try {
      if (outcome.ok) {
        try {
          await record({ kind: 'succeeded', output: outcome.output });
          events.emit('task:succeeded', { ...ids, durationMs: Math.round(performance.now() - startedAt), output: outcome.output });
          return;
        } catch (error) {
          // Only a verdict on the value itself becomes the task's failure: the
          // store refuses it before writing, or after reading its position back
          // empty. Any other error leaves the outcome unwritten (another
          // attempt recovers the task); it never turns a success into a failure.
          if (!(error instanceof UnstorableValueError)) throw error;
          outcome = { ok: false, error };
        }
      }
      // When the signal fired, its reason (timeout, cancel, stop, lost lease) is
      // the cause, whatever the handler threw while unwinding.
      const reason = controller.signal.aborted ? coerceError(controller.signal.reason) : outcome.error;
      if (reason instanceof LeaseLostError) return leaseLost();
      await recordFailure(a, reason, ids, record);
    } catch (error) {
      if (error instanceof SuccessStood) {
        events.emit('task:succeeded', { ...ids, durationMs: Math.round(performance.now() - startedAt), output: error.output });
        return;
      }
      if (error instanceof LeaseLostError) return leaseLost();
      events.emit('runner:error', { error: coerceError(error), context: `recording the outcome of task "${claim.task}"` });
    }
  }
}

/** The success of this attempt landed before the failure written in its place (its reply had been lost). */
class SuccessStood extends Error {
  constructor(readonly output: unknown) {
    super('the attempt\'s success was recorded first');
  }
}

/** The outcome could not be written while the lease lasted; another runner will recover the task. */
class OutcomeNotWrittenError extends Error {
  constructor(task: string, cause: unknown) {
    super(
      `The outcome of task "${task}" could not be written before its lease ran out (${(cause as Error)?.message ?? String(cause)}); ` +
        'the attempt stopped and another runner will take the task over',
      { cause },
    );
    this.name = 'OutcomeNotWrittenError';
  }
}

/**
 * Runs an idempotent outcome write until it lands. A database error (network,
 * timeout, not primary) is retried, never turned into the task's failure,
 * for as long as this attempt can prove its lease and at most `leaseMs`
 * (heartbeats go on meanwhile); then it gives up with
 * {@link OutcomeNotWrittenError} and the task is recovered elsewhere.
 */
async function durably<T>(a: AttemptInput, fence: LeaseFence, write: () => Promise<T>): Promise<T> {
  const giveUpAt = performance.now() + a.leaseMs;
  let delay = 100;
  let reported = false;
  for (;;) {
    try {
      return await write();
    } catch (error) {
      if (!isTransientError(error)) throw error;
      if (fence.expired || performance.now() + delay >= Math.min(giveUpAt, fence.deadline)) {
        throw new OutcomeNotWrittenError(a.claim.task, error);
      }
      if (!reported) {
        reported = true;
        a.events.emit('runner:error', { error: coerceError(error), context: `writing the outcome of task "${a.claim.task}" (retrying)` });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(1000, delay * 2);
    }
  }
}

async function recordFailure(
  a: AttemptInput,
  error: Error,
  ids: { container: string; task: string; attempt: number },
  record: (o: AttemptOutcome) => Promise<void>,
): Promise<void> {
  const { claim, events, options } = a;
  if (error instanceof NotFoundError) return; // the container was deleted under us
  if (error instanceof RunnerStoppedError) {
    await record({ kind: 'released' });
    events.emit('task:released', ids);
    return;
  }
  if (error instanceof CancelledError) {
    await record({ kind: 'cancelled', reason: error.message });
    events.emit('task:cancelled', { ...ids, reason: error.message });
    return;
  }
  const persisted = toPersistedError(error, claim.attempt);
  const failures = a.failuresBefore + 1;
  const retryable = !(error instanceof NonRetryableError) && failures <= options.retries;
  if (retryable) {
    const delayMs = backoffDelayMs(options.backoff, failures);
    const retryAt = new Date(a.clock.now() + delayMs);
    await record({ kind: 'failed', error: persisted, retryAt });
    events.emit('task:retry', { ...ids, error: persisted, retryAt, delayMs });
  } else {
    await record({ kind: 'failed', error: persisted, retryAt: null });
    events.emit('task:failed', { ...ids, error: persisted });
  }
}

/** Converts an error into its persisted form (message, stack, code). */
export function toPersistedError(error: Error, attempt: number): PersistedError {
  const code = (error as { code?: unknown }).code;
  return {
    name: capText(String(error.name), 1024),
    message: capText(String(error.message), MAX_STORED_ERROR_TEXT_BYTES),
    code: typeof code === 'string' || typeof code === 'number' ? capText(String(code), 1024) : null,
    stack: typeof error.stack === 'string' ? capText(error.stack, MAX_STORED_ERROR_TEXT_BYTES) : null,
    attempt,
    at: new Date(),
  };
}

/**
 * Cuts `text` to at most `maxBytes` of UTF-8 (never inside a character) and
 * says how much was cut, so an error of any size still fits in its outcome.
 */
export function capText(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const total = Buffer.byteLength(text, 'utf8');
  const mark = `… [truncated: ${total} bytes in all]`;
  let keep = Buffer.from(text, 'utf8').subarray(0, maxBytes - Buffer.byteLength(mark, 'utf8')).toString('utf8');
  if (keep.endsWith('\uFFFD')) keep = keep.slice(0, -1); // a character cut in half
  return keep + mark;
}

/**
 * Marks a promise handed to a handler as handled: a `ctx.*` call the handler
 * does not await (or makes after its attempt ended) never becomes an
 * unhandled rejection that would end the process; it rejects only for a
 * caller that awaits it. Write errors are reported as `runner:error` by the
 * writer, and a lost lease aborts `ctx.signal`.
 */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
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
