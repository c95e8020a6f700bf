import { lostRunner } from '../store/lease-health.js';
import { deriveContainerState } from '../store/container-state.js';
import type { ContainerSnapshot, ContainerStatus, SettleOutcome, TaskCause, TaskSnapshot, TaskStatus } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';

/** A transition of a task that is not (or no longer) running anywhere. */
export interface Settlement {
  task: string;
  token: number;
  /** `reset`: a skip whose cause moved on is undone. */
  kind: 'skipped' | 'cancelled' | 'reset';
  reason: string;
  /** The task, at the position read, that decided it. */
  cause?: TaskCause | null;
}

/** The store outcome that records a settlement. */
export function settlementOutcome(s: Settlement): SettleOutcome {
  return s.kind === 'reset' ? { kind: 'reset' } : { kind: s.kind, reason: s.reason, cause: s.cause ?? null };
}

/** The reason recorded on the tasks a fail-fast stop cancels or skips. */
export function failFastReason(task: string): string {
  return `container failed: task "${task}" failed`;
}

/** Dependency statuses that skip a dependent. */
const BLOCKING: ReadonlySet<TaskStatus> = new Set(['failed', 'skipped', 'cancelled']);

/** What a runner should do next, derived from one snapshot. */
export interface StepPlan {
  /** Every task has reached a terminal status. */
  done: boolean;
  /** The container's final status, once `done`. */
  outcome: Exclude<ContainerStatus, 'running'> | null;
  /** When set, the container is stopping (cancelled, or failed fast): abort local attempts with this reason. */
  halt: { status: 'cancelled' | 'failed'; reason: string } | null;
  /** Tasks to skip or cancel now. */
  settle: Settlement[];
  /** Tasks that may be claimed now, in declaration order; `recovered` when a lease expired. */
  ready: Array<{ snapshot: TaskSnapshot; recovered: boolean }>;
  /** Earliest future moment at which something may become ready (a retry, a lease expiry). */
  nextWakeAt: Date | null;
  /**
   * Running tasks whose holder stopped renewing its lease, which is not
   * expired yet: nobody can take them over before `expiresAt`.
   */
  waitingForLease: Array<{ task: string; token: number; attempt: number; holder: string; expiresAt: Date }>;
}

/**
 * The whole container when planning over part of it: where dependencies are
 * looked up, and whether every declared task is present.
 */
export interface PlanScope {
  get(name: string): TaskSnapshot | undefined;
  complete: boolean;
}

/**
 * Plans one step from task statuses alone; no counters are involved, so any
 * runner derives the same plan from the same snapshot. With a `scope`, plans
 * only the tasks of the snapshot (those that changed, say), looking their
 * dependencies up in the scope; `done` and `outcome` then speak of those tasks only.
 */
export function planStep(snapshot: ContainerSnapshot, failFast: boolean, scope?: PlanScope): StepPlan {
  const now = snapshot.readAt.getTime();
  const byName = scope ?? new Map(snapshot.tasks.map((t) => [t.record.name, t]));
  const plan: StepPlan = { done: false, outcome: null, halt: null, settle: [], ready: [], nextWakeAt: null, waitingForLease: [] };
  const wakeAt = (ms: number) => {
    if (ms > now && (plan.nextWakeAt === null || ms < plan.nextWakeAt.getTime())) plan.nextWakeAt = new Date(ms);
  };

  const derived = scope ? { complete: scope.complete } : deriveContainerState(snapshot.container, snapshot.tasks);
  const firstFailed = snapshot.tasks.find((t) => t.state.status === 'failed');
  let haltCause: TaskCause | null = null;
  if (snapshot.container.cancelRequestedAt) {
    plan.halt = { status: 'cancelled', reason: 'container cancelled' };
  } else if (failFast && firstFailed) {
    plan.halt = { status: 'failed', reason: failFastReason(firstFailed.record.name) };
    haltCause = { task: firstFailed.record.name, token: firstFailed.state.token };
  }

  for (const t of snapshot.tasks) {
    const { status, token, leaseUntil, notBefore } = t.state;
    const leaseExpired = status === 'running' && (leaseUntil === null || leaseUntil.getTime() <= now);
    const lost = leaseExpired ? null : lostRunner(t.state, snapshot.readAt);
    if (lost) {
      const { attempt } = t.state;
      plan.waitingForLease.push({ task: t.record.name, token, attempt, holder: lost.holder, expiresAt: lost.expiresAt });
    }
    if (plan.halt) {
      // Pending tasks stop here; running ones are stopped by their runners,
      // or settled here once their runner is gone (lease expired).
      if (status === 'pending' || leaseExpired) {
        const kind = plan.halt.status === 'failed' && status === 'pending' ? 'skipped' : 'cancelled';
        plan.settle.push({ task: t.record.name, token, kind, reason: plan.halt.reason, cause: haltCause });
      } else if (status === 'running' && leaseUntil) {
        wakeAt(leaseUntil.getTime());
      }
      continue;
    }
    if (status === 'skipped' && t.state.cause && t.record.dependsOn.includes(t.state.cause.task)) {
      // A skip is undone once the dependency it was decided on moves on (its
      // retry was reset, ran or succeeded; or the missing task now exists).
      const dep = byName.get(t.state.cause.task);
      if (dep && dep.state.token !== t.state.cause.token && !BLOCKING.has(dep.state.status)) {
        plan.settle.push({ task: t.record.name, token, kind: 'reset', reason: `dependency "${dep.record.name}" moved on` });
      }
      continue;
    }
    if (status === 'pending') {
      // A dependency that does not exist (deleted while this task was added)
      // can never succeed; once every declared task is present, say so.
      const missing = derived.complete ? t.record.dependsOn.find((d) => byName.get(d) === undefined) : undefined;
      if (missing !== undefined) {
        const reason = `dependency "${missing}" does not exist`;
        plan.settle.push({ task: t.record.name, token, kind: 'skipped', reason, cause: { task: missing, token: -1 } });
        continue;
      }
      const blocked = t.record.dependsOn.map((d) => byName.get(d)).find((d) => d !== undefined && BLOCKING.has(d.state.status));
      if (blocked) {
        plan.settle.push({
          task: t.record.name,
          token,
          kind: 'skipped',
          reason: `dependency "${blocked.record.name}" ${blocked.state.status}`,
          cause: { task: blocked.record.name, token: blocked.state.token },
        });
        continue;
      }
      const depsDone = t.record.dependsOn.every((d) => byName.get(d)?.state.status === 'succeeded');
      if (!depsDone) continue;
      if (notBefore && notBefore.getTime() > now) wakeAt(notBefore.getTime());
      else plan.ready.push({ snapshot: t, recovered: false });
    } else if (status === 'running') {
      if (leaseExpired) plan.ready.push({ snapshot: t, recovered: true });
      else if (leaseUntil) wakeAt(leaseUntil.getTime());
    }
  }

  // Done once every task is terminal and every declared task exists: a
  // container whose creator died before inserting its tasks is not finished.
  if (plan.settle.length === 0 && derived.complete && snapshot.tasks.every((t) => TERMINAL_STATUSES.has(t.state.status))) {
    plan.done = true;
    plan.outcome = containerOutcome(snapshot);
  }
  return plan;
}

/** The final status of a container whose tasks are all terminal (derived, see `deriveContainerState`). */
export function containerOutcome(snapshot: ContainerSnapshot): Exclude<ContainerStatus, 'running'> {
  const { status } = deriveContainerState(snapshot.container, snapshot.tasks);
  return status === 'running' ? 'failed' : status;
}
