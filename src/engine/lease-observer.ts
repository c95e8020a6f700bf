import type { ContainerSnapshot, TaskState } from '../store/types.js';

/**
 * The identity of a running task's lease as a reader observes it: position
 * (fencing token), attempt, holder, and its renewals counted by the server.
 * A claim of an older version, whose heartbeats were not counted, falls back
 * on its written expiry.
 */
export function leaseIdentity(s: TaskState): string {
  const renewals = s.heartbeats > 0 || s.leaseUntil === null ? `#${s.heartbeats}` : `@${s.leaseUntil.getTime()}`;
  return `${s.token}|${s.attempt}|${s.runnerId ?? ''}|${renewals}`;
}

/**
 * The reader's side of a lease: whether a running task's holder is gone is
 * judged on this runner's own monotonic clock, never by comparing the
 * holder's written expiry time with this machine's wall clock.
 *
 * A lease is what {@link leaseIdentity} gives: the claim's position,
 * attempt and holder, and its renewals as the server counted them; each
 * heartbeat adds one, so a live holder changes it every `heartbeatMs`. No
 * writer's clock takes part in it: a holder whose clock stands still (a
 * fixed `clock` option) or jumps still shows that it is alive. A task is taken over only after its lease was seen
 * unchanged for the holder's `leaseMs` of this reader's time, counted from
 * the first read that saw it. Clock skew between machines then changes
 * nothing, and since a failed read forgets every observation and time inside
 * a slow read never counts, a database outage does not expire every lease at
 * once: after it, each holder gets a whole lease to show that it is alive.
 *
 * The written expiry stays in the log for display (`pts status`, `runnerLost`).
 */
export class LeaseObserver {
  private readonly seen = new Map<string, { lease: string; since: number }>();

  constructor(
    /** Lease length (ms) assumed for claims that do not record theirs. */
    private readonly defaultLeaseMs: number,
  ) {}

  /** Forgets every observation: the database was not reachable for a while. */
  forget(): void {
    this.seen.clear();
  }

  /**
   * Returns the snapshot with each running task's `leaseUntil` replaced by
   * when this reader will consider it expired, on the snapshot's own time
   * scale (`readAt`), so the planner's "expired at `readAt`" check and its
   * wake-up times follow this reader's judgement. `readStartedAt` and
   * `readEndedAt` are the monotonic times (`performance.now()`) around the
   * read. A lease counts as seen from the end of the first read that saw it
   * (the holder sent it before that), and as unchanged until the *start* of
   * the latest read that still saw it: time spent inside a slow read (the
   * database retried or unreachable meanwhile) never counts.
   */
  judge(snapshot: ContainerSnapshot, readStartedAt: number, readEndedAt: number): ContainerSnapshot {
    const readAt = snapshot.readAt.getTime();
    const running = new Set<string>();
    const tasks = snapshot.tasks.map((t) => {
      const s = t.state;
      if (s.status !== 'running' || s.leaseUntil === null) return t;
      const name = t.record.name;
      running.add(name);
      const lease = leaseIdentity(s);
      let entry = this.seen.get(name);
      if (!entry || entry.lease !== lease) {
        entry = { lease, since: readEndedAt };
        this.seen.set(name, entry);
      }
      const unchangedMs = Math.max(0, readStartedAt - entry.since);
      const leaseMs = s.leaseMs ?? this.defaultLeaseMs;
      const leaseUntil = new Date(readAt + leaseMs - unchangedMs);
      return { ...t, state: { ...s, leaseUntil } };
    });
    for (const name of this.seen.keys()) if (!running.has(name)) this.seen.delete(name);
    return { ...snapshot, tasks };
  }
}
