import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { LeaseLostError, UnstorableValueError } from '../../errors.js';
import { claimedEntry, outcomeEntry, type Transition } from '../transition.js';
import type { AttemptOutcome, AttemptPatch, Claim, ClaimRequest, SettleOutcome } from '../types.js';
import { AppendRefusedError, type AppendVerdict, type Predecessor } from './append-batch.js';
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

export async function claimTask(ctx: StoreContext, request: ClaimRequest): Promise<Claim | null> {
  const { container, task, expectedToken, claim, onTaken, after } = request;
  const inc = await ctx.incarnation(container);
  if (inc === null) return null;
  // Behind the outcome of the attempt whose slot this claim takes (see ClaimOrder).
  const prior = after?.outcomeOf;
  const predecessor: Predecessor | undefined = prior
    ? { id: transitionKey(prior.container, prior.task, prior.token + 1, prior.incarnation ?? inc), over: after!.over }
    : undefined;
  const at = ctx.now();
  const token = expectedToken + 1;
  const leaseUntil = new Date(at.getTime() + claim.leaseMs);
  const progress = claim.progress ?? 0;
  const nonce = newNonce();
  const granted: Claim = { container, incarnation: inc, task, token, attempt: claim.attempt, runnerId: claim.runnerId, claimedAt: at, leaseUntil, progress, nonce };
  // A claim whose reply was lost is recognised by its nonce on the retry
  // (see append) and kept: it is ours, not a position someone else took.
  const verdict = await append(ctx, {
    ...claimedEntry(granted, claim),
    nonce,
    ...(inc ? { incarnation: inc } : {}),
    // The server's time, as this writer measured its offset (see measureServerOffset).
    ...(ctx.serverOffsetMs !== null ? { leaseRenewedAt: new Date(at.getTime() + ctx.serverOffsetMs) } : {}),
    ...(predecessor ? { behind: predecessor.id } : {}),
  }, predecessor);
  if (verdict.ours) return granted;
  if (verdict.stored && onTaken) {
    const { _id, ...entry } = verdict.stored;
    void _id;
    onTaken(entry);
  }
  return null;
}

export async function updateAttempt(ctx: StoreContext, claim: Claim, patch: AttemptPatch): Promise<void> {
  const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  if (set.checkpoint !== undefined) {
    await ctx.assertStorable('checkpoint', claim.task, set.checkpoint);
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
  if (next && !isOwnOutcome(claim, next.nonce)) {
    throw new LeaseLostError(claim.container, claim.task, claim.token);
  }
}

/**
 * Appends an attempt's outcome at the claim's next position; returns the kind
 * of outcome that now stands there for this claim: `outcome.kind`, or the
 * kind of an earlier outcome of the same claim that landed first (a success
 * whose reply was lost, met by the failure written in its place).
 * @throws UnstorableValueError when the output cannot be stored (checked before writing; or refused by the server, its position read back empty)
 * @throws LeaseLostError when another writer holds the position
 */
export async function finishAttempt(ctx: StoreContext, claim: Claim, outcome: AttemptOutcome, endedAt = ctx.now()): Promise<AttemptOutcome['kind']> {
  const inc = claim.incarnation ?? (await ctx.incarnation(claim.container)) ?? '';
  // The same nonce on every try of this outcome: repeating it after a lost
  // reply finds its own entry. Each kind has its own, so a failure written in
  // place of a success never mistakes that success for itself.
  const entry: Transition = { ...outcomeEntry(claim, outcome, endedAt), ...(inc ? { incarnation: inc } : {}), nonce: outcomeNonce(claim, outcome.kind) };
  if (outcome.kind === 'succeeded') {
    await ctx.assertStorable('output', claim.task, outcome.output);
    assertFits('output', claim.task, { ...entry, _id: transitionKey(claim.container, claim.task, entry.token, inc) });
  }
  let verdict: AppendVerdict;
  try {
    verdict = await append(ctx, entry);
  } catch (error) {
    if (error instanceof AppendRefusedError && outcome.kind === 'succeeded') {
      throw new UnstorableValueError('output', claim.task, `the server refused it (code ${String(error.code ?? 'none')}: ${error.serverMessage})`);
    }
    throw error;
  }
  if (verdict.ours) return outcome.kind;
  const stood = ownOutcomeKind(claim, verdict.storedNonce);
  if (stood) return stood;
  throw new LeaseLostError(claim.container, claim.task, claim.token);
}

export async function settleTask(ctx: StoreContext, container: string, task: string, expectedToken: number, outcome: SettleOutcome): Promise<boolean> {
  const inc = await ctx.incarnation(container);
  if (inc === null) return false;
  const base = { container, ...(inc ? { incarnation: inc } : {}), task, token: expectedToken + 1, at: ctx.now(), nonce: newNonce() };
  if (outcome.kind === 'edited') return (await append(ctx, { ...base, kind: 'edited', set: outcome.set })).ours;
  if (outcome.kind === 'reset') return (await append(ctx, { ...base, kind: 'reset', reason: null })).ours;
  return (await append(ctx, { ...base, kind: outcome.kind, reason: outcome.reason, cause: outcome.cause ?? null })).ours;
}

/**
 * Appends to a task's log at `entry.token` (grouped with the appends of the
 * same event-loop turn, see {@link AppendBatcher}); `ours: false` when another
 * writer holds that position. Transient errors (network, timeout, not
 * primary) are retried with the same `_id` and nonce; a refused entry's
 * position is read back: our own nonce means an earlier try landed.
 * @throws AppendRefusedError when the server refused the entry itself
 */
export async function append(ctx: StoreContext, entry: Transition, after?: Predecessor): Promise<AppendVerdict> {
  const _id = transitionKey(entry.container, entry.task, entry.token, entry.incarnation);
  return ctx.appends.append({ ...entry, _id } as TransitionDoc, after);
}

/**
 * Nonce of a claim's outcome entry of one kind: the same for every try of
 * that outcome, different for each kind (`<claim nonce>:<kind>`).
 */
function outcomeNonce(claim: Claim, kind: AttemptOutcome['kind']): string | undefined {
  return claim.nonce === undefined ? undefined : `${claim.nonce}:${kind}`;
}

/** Outcome kinds by nonce suffix; `end` is what versions before per-kind nonces wrote for every kind. */
const OUTCOME_KINDS = new Set<string>(['succeeded', 'failed', 'cancelled', 'released']);

/** The kind of this claim's own outcome when `nonce` is one (`end`: an older version's, kind unknown). */
function ownOutcomeKind(claim: Claim, nonce: string | undefined): AttemptOutcome['kind'] | null {
  if (claim.nonce === undefined || nonce === undefined || !nonce.startsWith(`${claim.nonce}:`)) return null;
  const kind = nonce.slice(claim.nonce.length + 1);
  return OUTCOME_KINDS.has(kind) ? (kind as AttemptOutcome['kind']) : null;
}

/** True when `nonce` is an outcome this claim wrote (of any kind, or of an older version). */
function isOwnOutcome(claim: Claim, nonce: string | undefined): boolean {
  return claim.nonce !== undefined && nonce !== undefined && nonce.startsWith(`${claim.nonce}:`);
}

/** Largest document MongoDB (and FerretDB) stores: 16 MiB. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * Refuses a document over the BSON limit before the driver fails on it with an unhelpful message.
 * @throws UnstorableValueError with the document's size and the limit, in bytes
 */
export function assertFits(value: 'output' | 'checkpoint' | 'input', task: string, doc: Record<string, unknown>): void {
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

