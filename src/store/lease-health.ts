import type { TaskState } from './types.js';

/**
 * Heartbeats a holder may miss before it counts as lost: a live runner
 * renews every `heartbeatMs`, so two missed renewals (plus the write that
 * may still be on its way) mean it is gone or frozen, not just slow.
 */
export const MISSED_HEARTBEATS_FOR_LOST = 2;

/** A running task whose runner stopped renewing its lease, and nobody has taken it over yet. */
export interface LostRunner {
  /** The runner that holds (held) the lease. */
  holder: string;
  /** When the lease ends (or ended); another runner may take the task over from then on. */
  expiresAt: Date;
  /** The holder's last renewal, or null when its claim does not say (claims by the 0.0.1 API). */
  lastHeartbeatAt: Date | null;
  /** True once the lease has expired: any runner of the container takes the task over at its next step. */
  expired: boolean;
}

/**
 * Tells whether a running task's holder is lost at `now`: its lease has
 * expired, or it has been silent for more than {@link MISSED_HEARTBEATS_FOR_LOST}
 * heartbeat intervals (the last heartbeat is `leaseUntil - leaseMs`, both from
 * its claim). Returns null for a task that is not running or whose holder is
 * alive. Readers and writers compare against their own clocks, as the lease
 * check of the planner does.
 */
export function lostRunner(state: TaskState, now: Date): LostRunner | null {
  if (state.status !== 'running' || state.runnerId === null || state.leaseUntil === null) return null;
  const expiresAt = state.leaseUntil;
  const expired = expiresAt.getTime() <= now.getTime();
  const lastHeartbeatAt = state.leaseMs !== null ? new Date(expiresAt.getTime() - state.leaseMs) : null;
  const silent =
    lastHeartbeatAt !== null &&
    state.heartbeatMs !== null &&
    now.getTime() - lastHeartbeatAt.getTime() > MISSED_HEARTBEATS_FOR_LOST * state.heartbeatMs;
  if (!expired && !silent) return null;
  return { holder: state.runnerId, expiresAt, lastHeartbeatAt, expired };
}
