import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { LeaseLostError, UnstorableValueError } from '../../errors.js';
import { claimedEntry, outcomeEntry, type Transition } from '../transition.js';
import type { AttemptOutcome, AttemptPatch, Claim, NewClaim, SettleOutcome } from '../types.js';
import type { StoreContext } from './context.js';
import { transitionKey } from './keys.js';
import type { TransitionDoc } from './models.js';
import { STAMP_RENEWAL } from './server-clock.js';

/**
 * The task log's writes: claims, in-place updates of a running attempt,
 * outcomes and settlements. Each appends at the next position of one task's
 * log under a unique `_id`, so exactly one writer takes each position.
 */

const newNonce = (): string => randomBytes(8).toString('hex');

export async function claimTask(
ctx: StoreContext,
  container: string,
  task: string,
  expectedToken: number,
  claim: NewClaim,
): Promise<Claim | null> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return null;
  const at = ctx.now();
  const token = expectedToken + 1;
  const leaseUntil = new Date(at.getTime() + claim.leaseMs);
  const progress = claim.progress ?? 0;
  const nonce = newNonce();
  const granted: Claim = { container, incarnation: inc, task, token, attempt: claim.attempt, runnerId: claim.runnerId, claimedAt: at, leaseUntil, progress, nonce };
  // A claim whose reply was lost is recognised by its nonce on the retry
  // (see append) and kept: it is ours, not a position someone else took.
  const inserted = await append(ctx, {
    ...claimedEntry(granted, claim),
    nonce,
    ...(inc ? { incarnation: inc } : {}),
    // The server's time, as this writer measured its offset (see measureServerOffset).
    ...(ctx.serverOffsetMs !== null ? { leaseRenewedAt: new Date(at.getTime() + ctx.serverOffsetMs) } : {}),
  });
  return inserted ? granted : null;
}

export async function updateAttempt(ctx: StoreContext, claim: Claim, patch: AttemptPatch): Promise<void> {
  const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  if (set.checkpoint !== undefined) {
    // The claim entry as it will be once patched (its other fields are small).
    assertFits('checkpoint', claim.task, { ...claim, kind: 'claimed', at: claim.claimedAt, progress: 0, statusText: '', ...set });
  }
  // Writing to our own claim entry is harmless even when fenced out: state is
  // read from the newest claim only. The probe below tells us if we lost it.
  // Both are idempotent, so a transient error repeats them. The keys carry
  // the claim's incarnation: a re-created container never sees these writes.
  const inc = claim.incarnation ?? (await ctx.incarnation(claim.container)) ?? '';
  const id = transitionKey(claim.container, claim.task, claim.token, inc);
  await ctx.write('updateAttempt', (o) => ctx.m.transitions.updateOne({ _id: id }, { $set: set, ...(set.leaseUntil ? STAMP_RENEWAL : {}) }, o).exec());
  const nextId = transitionKey(claim.container, claim.task, claim.token + 1, inc);
  const next = await ctx.read('updateAttempt', () =>
    ctx.q(ctx.m.transitions.findById(nextId, { nonce: 1 }).lean<{ nonce?: string }>()).exec(),
  );
  // Our own outcome (written, then a heartbeat still in flight) is not a takeover.
  if (next && (claim.nonce === undefined || next.nonce !== outcomeNonce(claim))) {
    throw new LeaseLostError(claim.container, claim.task, claim.token);
  }
}

export async function finishAttempt(ctx: StoreContext, claim: Claim, outcome: AttemptOutcome, endedAt = ctx.now()): Promise<void> {
  const inc = claim.incarnation ?? (await ctx.incarnation(claim.container)) ?? '';
  // The same nonce on every call for this claim: repeating the outcome after
  // a lost reply finds its own entry instead of reporting a lost lease.
  const entry: Transition = { ...outcomeEntry(claim, outcome, endedAt), ...(inc ? { incarnation: inc } : {}), nonce: outcomeNonce(claim) };
  if (outcome.kind === 'succeeded') assertFits('output', claim.task, { ...entry, _id: transitionKey(claim.container, claim.task, entry.token, inc) });
  if (!(await append(ctx, entry))) throw new LeaseLostError(claim.container, claim.task, claim.token);
}

export async function settleTask(ctx: StoreContext, container: string, task: string, expectedToken: number, outcome: SettleOutcome): Promise<boolean> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return false;
  const base = { container, ...(inc ? { incarnation: inc } : {}), task, token: expectedToken + 1, at: ctx.now(), nonce: newNonce() };
  if (outcome.kind === 'edited') return append(ctx, { ...base, kind: 'edited', set: outcome.set });
  if (outcome.kind === 'reset') return append(ctx, { ...base, kind: 'reset', reason: null });
  return append(ctx, { ...base, kind: outcome.kind, reason: outcome.reason, cause: outcome.cause ?? null });
}

/**
 * Appends to a task's log at `entry.token`; false when another writer holds
 * that position. Transient errors (network, timeout, not primary) are
 * retried with the same `_id` and nonce; a duplicate key is then read back:
 * our own nonce means an earlier try landed and its reply was lost.
 */
export async function append(ctx: StoreContext, entry: Transition): Promise<boolean> {
  const _id = transitionKey(entry.container, entry.task, entry.token, entry.incarnation);
  return ctx.appends.append({ ...entry, _id } as TransitionDoc);
}

/** Nonce of a claim's outcome entry: the same for every try of that claim's outcome. */
function outcomeNonce(claim: Claim): string | undefined {
  return claim.nonce === undefined ? undefined : `${claim.nonce}:end`;
}

/** Largest document MongoDB (and FerretDB) stores: 16 MiB. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** Refuses a document over the BSON limit before the driver fails on it with an unhelpful message. */
function assertFits(value: 'output' | 'checkpoint', task: string, doc: Record<string, unknown>): void {
  const size = mongoose.mongo.BSON.calculateObjectSize(doc);
  if (size > MAX_DOCUMENT_BYTES) {
    throw new UnstorableValueError(
      value,
      task,
      `it makes a ${size}-byte BSON document, over the limit of ${MAX_DOCUMENT_BYTES} bytes (16 MiB) per MongoDB document; ` +
        'store large data elsewhere (a file, GridFS, another collection) and return a reference',
      size,
      MAX_DOCUMENT_BYTES,
    );
  }
}

