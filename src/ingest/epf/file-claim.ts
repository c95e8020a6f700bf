/**
 * A file's ledger claim, held by the slot (its container's name) from the
 * first step that works on the file to the publish that records it, so two
 * slots (`overlap: 'parallel'`, two feeds, a one-off run beside the hourly
 * one) never ingest one file at once: the second waits for the first and
 * skips the file once it is recorded, and says so (see `Ledger.claim`). The
 * claim is renewed between steps too (./claim-heartbeat.ts).
 */
import { RunnerStoppedError, type TaskContext } from '../../index.js';
import { ClaimHeartbeat } from './claim-heartbeat.js';
import type { EpfEnv } from './env.js';
import { ledgerItem, type PlannedFile } from './plan.js';

/** How long a file's claim lives after its last renewal, in ms (when `EpfEnv.claimLeaseMs` is not set). */
export const DEFAULT_CLAIM_LEASE_MS = 300_000;

/** What {@link withFileClaim} did. */
export type FileClaimResult<T> = { status: 'ran'; value: T } | { status: 'done'; by: string };

/**
 * Releases the file claims the slot `container` still holds: call it when the
 * slot's run ended failed or cancelled, so the next run (the next hour, a
 * `pts epf` started by hand) takes its files at once instead of waiting out
 * their leases ({@link DEFAULT_CLAIM_LEASE_MS}). Returns how many it released.
 */
export function releaseSlotClaims(env: EpfEnv, container: string): Promise<number> {
  return env.ledger.releaseClaimsOf(container);
}

/** The ledger item a file is claimed as: the one publish records (URL path, size, MD5 read at discovery, an incremental's basis). */
export const claimItemOf = (file: PlannedFile) => ledgerItem({ url: file.url, size: file.size, md5: file.md5, ...(file.basis ? { basis: file.basis } : {}) });

/** One heartbeat per EPF environment (per process, in practice). */
const heartbeats = new WeakMap<EpfEnv, ClaimHeartbeat>();

/** The heartbeat that renews the file claims held with `env` (created on first use). */
export function claimHeartbeatOf(env: EpfEnv): ClaimHeartbeat {
  let heartbeat = heartbeats.get(env);
  if (!heartbeat) {
    heartbeat = new ClaimHeartbeat(env.connection, (env.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS) / 3);
    heartbeats.set(env, heartbeat);
  }
  return heartbeat;
}

/**
 * Claims `file` for this slot (a slot claims again what it holds: any runner
 * of its container, any step), waiting while another slot holds it, then runs
 * `work`. Returns `done` without running `work` when the file was recorded
 * meanwhile (by the slot named in `by`). The claim is renewed every third of
 * its lease by the process's {@link ClaimHeartbeat}, during `work` and after
 * it, while the file's next step waits (see ./claim-heartbeat.ts). With
 * `release` (publish, after recording the file) the claim is released when
 * `work` succeeds. A step that fails stops renewing it (its retry claims it
 * again; a file that failed for good keeps it until the slot ends, when
 * {@link releaseSlotClaims} lets it go); a step aborted by a graceful stop
 * of its runner releases it.
 * @throws whatever `work` throws; {@link LedgerClaimLostError} when another slot took the claim over while `work` ran
 */
export async function withFileClaim<T>(
  ctx: TaskContext,
  env: EpfEnv,
  file: PlannedFile,
  work: () => Promise<T>,
  o: { release?: boolean } = {},
): Promise<FileClaimResult<T>> {
  const leaseMs = env.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS;
  const got = await env.ledger.claim(claimItemOf(file), {
    holder: ctx.container,
    leaseMs,
    wait: true,
    pollMs: Math.min(1000, leaseMs / 3),
    signal: ctx.signal,
    onBusy: (holder) => {
      env.reporter.warn?.(`${file.name}: slot ${holder} is ingesting it; this slot waits for it`);
      void ctx.progress(0, `waiting for slot ${holder}, which ingests ${file.name}`).catch(() => undefined);
    },
  });
  if (got.status === 'done') {
    const by = String((got.entry.info as { container?: string } | null)?.container ?? 'another slot');
    env.reporter.warn?.(`${file.name}: ingested by ${by}; skipped by this slot`);
    return { status: 'done', by };
  }
  if (got.status === 'busy') throw new Error(`unreachable: a waiting claim of ${file.name} returned busy`);
  const heartbeat = claimHeartbeatOf(env);
  const held = heartbeat.hold(ctx.container, got.claim);
  let ok = false;
  try {
    ctx.signal.throwIfAborted(); // stopped while claiming: this attempt is over, work on nothing
    const value = await work();
    if (held.lost) throw held.lost;
    ctx.signal.throwIfAborted(); // its outcome is not recorded: the next attempt redoes it
    ok = true;
    return { status: 'ran', value };
  } finally {
    heartbeat.stepEnded(held);
    if (!ok || o.release) heartbeat.drop(held);
    // A graceful stop lets the file go at once: another slot need not wait out the claim's lease.
    const stopped = ctx.signal.aborted && ctx.signal.reason instanceof RunnerStoppedError;
    if (stopped || (ok && o.release)) await got.claim.release().catch(() => undefined);
  }
}
