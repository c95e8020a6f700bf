import type { ContainerSnapshot, TaskSnapshot, TaskState } from '../store/types.js';
import type { RunnerEvents } from './events.js';
import { LeaseObserver } from './lease-observer.js';
import { planStep, type PlanScope } from './plan.js';

/**
 * A runner's judgement of the leases held elsewhere, made on its own
 * monotonic clock at each read of those tasks (see {@link LeaseObserver}):
 * which tasks may be taken over, when the next lease may expire, and which
 * silent holders to announce with `task:waiting-for-lease` (once per lease).
 */
export class LeaseJudgement {
  private readonly observer: LeaseObserver;
  /** Running tasks held elsewhere, with their leases as judged. */
  private judged = new Map<string, TaskState>();
  /** `task#token` of the silent leases already announced. */
  private readonly announced = new Set<string>();
  /** Tasks whose holder's lease was judged expired, not yet handed out by {@link takeRecoverable}. */
  private recoverable: string[] = [];
  /** The earliest moment a lease held elsewhere may expire (wall clock), or null. */
  nextWakeAt: Date | null = null;

  constructor(
    private readonly leaseMs: number,
    private readonly runnerId: string,
    private readonly events: RunnerEvents,
  ) {
    this.observer = new LeaseObserver(leaseMs);
  }

  /** Forgets every observation: the database was not reachable for a while. */
  forget(): void {
    this.observer.forget();
    this.recoverable = [];
    this.nextWakeAt = null;
  }

  /**
   * Judges the given running tasks (held elsewhere), read between the given
   * monotonic times, at wall-clock time `now`.
   */
  judge(scope: PlanScope & { container: ContainerSnapshot['container'] }, running: TaskSnapshot[], readStartedAt: number, readEndedAt: number, now: Date): void {
    const judged = this.observer.judge({ container: scope.container, tasks: running, readAt: now }, readStartedAt, readEndedAt);
    this.judged = new Map(judged.tasks.map((t) => [t.record.name, t.state]));
    const plan = planStep(judged, scope.container.failFast, scope);
    for (const w of plan.waitingForLease) {
      const key = `${w.task}#${w.token}`;
      if (w.holder === this.runnerId || this.announced.has(key)) continue;
      this.announced.add(key);
      const { task, attempt, holder } = w;
      // The plan's expiry is this runner's judgement; the event also gives the written one, as status shows it.
      const expiresAt = scope.get(task)?.state.leaseUntil ?? w.expiresAt;
      this.events.emit('task:waiting-for-lease', { container: scope.container.name, task, attempt, holder, expiresAt, takeoverAt: w.expiresAt });
    }
    this.recoverable = plan.ready.filter((r) => r.recovered).map((r) => r.snapshot.record.name);
    this.nextWakeAt = plan.nextWakeAt;
  }

  /** The tasks judged recoverable since the last call (each handed out once). */
  takeRecoverable(): string[] {
    const names = this.recoverable;
    this.recoverable = [];
    return names;
  }

  /** The snapshot with the leases of tasks running elsewhere as judged; others are not expired for this reader. */
  apply(snapshot: ContainerSnapshot): ContainerSnapshot {
    const tasks = snapshot.tasks.map((t) => {
      if (t.state.status !== 'running') return t;
      const judged = this.judged.get(t.record.name);
      if (judged && judged.token === t.state.token) return { ...t, state: judged };
      return { ...t, state: { ...t.state, leaseUntil: new Date(snapshot.readAt.getTime() + this.leaseMs) } };
    });
    return { ...snapshot, tasks };
  }
}
