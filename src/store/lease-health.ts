import type { TaskState } from './types.js';

/**
 * Heartbeats a holder may miss before it counts as lost: a live runner
 * renews every `heartbeatMs`, so two missed renewals (plus the write that
 * may still be on its way) mean it is gone or frozen, not just slow.
 */
export const MISSED_HEARTBEATS_FOR_LOST = 2;

/**
 * Which clock judged a holder's silence:
 * - `server-clock`: the database server's. Each renewal is stamped with the
 *   server's time and the reader asked the server for its time now; the one
 *   clock all machines share, so clock skew between them changes nothing.
 * - `observation`: the reader's own monotonic clock, over successive reads
 *   (a runner's `LeaseObserver`, the `task:waiting-for-lease` event; `pts
 *   status --watch` for leases without a server stamp): the same lease seen
 *   unchanged for a while means its holder is silent.
 * - `wall-clock`: the holder's written expiry against the reader's wall
 *   clock; only when neither of the above is available (claims of older
 *   versions, a lease set by hand, a server that does not tell its time), and
 *   wrong by as much as the two machines' clocks differ.
 */
export type LivenessJudge = 'server-clock' | 'observation' | 'wall-clock';

/** A running task whose runner stopped renewing its lease, and nobody has taken it over yet. */
export interface LostRunner {
  /** The runner that holds (held) the lease. */
  holder: string;
  /**
   * When the lease ends as the holder wrote it, on the holder's own wall
   * clock: for display, and to match `task:waiting-for-lease`'s `expiresAt`.
   * Do not compare it with this machine's clock; count down with
   * {@link takeoverAt} or {@link expiresInMs}.
   */
  expiresAt: Date;
  /**
   * The holder's last renewal on its own wall clock (`expiresAt - leaseMs`),
   * comparable with its attempt's `startedAt`; null when its claim does not
   * say (claims by the 0.0.1 API).
   */
  lastHeartbeatAt: Date | null;
  /** True once the lease has expired: any runner of the container takes the task over at its next step. */
  expired: boolean;
  /** Milliseconds until the lease expires and another runner may take over, as judged; 0 once expired. */
  expiresInMs: number;
  /** When the lease expires as judged, on the reader's wall clock (the read time plus `expiresInMs` while not expired). */
  takeoverAt: Date;
  /** How long the holder has been silent (no renewal), on the judging clock. */
  silentForMs: number;
  /** Which clock judged it (see {@link LivenessJudge}). */
  judgedBy: LivenessJudge;
}

/**
 * Tells whether a running task's holder is lost: its lease has expired, or
 * it has been silent for more than {@link MISSED_HEARTBEATS_FOR_LOST}
 * heartbeat intervals. Returns null for a task that is not running or whose
 * holder is alive.
 *
 * With `serverNow` (the database server's time at the read) and a lease
 * whose renewals the server stamped (`leaseRenewedAt`), silence is measured
 * on the server's clock alone: `serverNow - leaseRenewedAt`, and the lease
 * ends `leaseMs` after the last renewal. Otherwise the holder's written
 * expiry is compared with `now`: that is how the planner judges, because the
 * runner hands it a snapshot whose leases its `LeaseObserver` has
 * rewritten on its own monotonic clock (so there, too, no two machines'
 * clocks are compared), and it is the last resort of a status read that has
 * no server time (`judgedBy: 'wall-clock'`).
 *
 * A long-lived reader (`pts status --watch`) also passes `observed`: the
 * same task as a `LeaseObserver` judged it over successive reads on the
 * reader's monotonic clock (its `leaseUntil` rewritten on `now`'s scale).
 * Leases without a server stamp are then judged by that observation
 * (`'observation'`) instead of by wall clocks.
 *
 * `now` is the reader's wall-clock time of the read: `takeoverAt` is given
 * on it.
 */
export function lostRunner(state: TaskState, now: Date, serverNow: Date | null = null, observed?: TaskState): LostRunner | null {
  if (state.status !== 'running' || state.runnerId === null || state.leaseUntil === null) return null;
  const expiresAt = state.leaseUntil;
  const lastHeartbeatAt = state.leaseMs !== null ? new Date(expiresAt.getTime() - state.leaseMs) : null;
  let judgedBy: LivenessJudge;
  let silentForMs: number;
  let expiresInMs: number;
  if (serverNow !== null && state.leaseRenewedAt && state.leaseMs !== null) {
    judgedBy = 'server-clock';
    // A renewal that landed after the server told its time is simply fresh.
    silentForMs = Math.max(0, serverNow.getTime() - state.leaseRenewedAt.getTime());
    expiresInMs = state.leaseMs - silentForMs;
  } else if (observed?.leaseUntil && state.leaseMs !== null) {
    judgedBy = 'observation';
    // The observer's expiry is `leaseMs` after the lease was first seen unchanged.
    expiresInMs = observed.leaseUntil.getTime() - now.getTime();
    silentForMs = Math.max(0, state.leaseMs - expiresInMs);
  } else {
    judgedBy = 'wall-clock';
    silentForMs = lastHeartbeatAt === null ? 0 : Math.max(0, now.getTime() - lastHeartbeatAt.getTime());
    expiresInMs = expiresAt.getTime() - now.getTime();
  }
  const expired = expiresInMs <= 0;
  const silent = state.heartbeatMs !== null && state.leaseMs !== null && silentForMs > MISSED_HEARTBEATS_FOR_LOST * state.heartbeatMs;
  if (!expired && !silent) return null;
  return {
    holder: state.runnerId,
    expiresAt,
    lastHeartbeatAt,
    expired,
    expiresInMs: Math.max(0, expiresInMs),
    takeoverAt: new Date(now.getTime() + expiresInMs),
    silentForMs,
    judgedBy,
  };
}
