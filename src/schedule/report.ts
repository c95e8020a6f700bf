import { Cron } from 'croner';
import type { ScheduleHead, ScheduleStore, SlotRecord } from '../store/schedule-types.js';

/** One schedule as `pts schedules` reports it. */
export interface ScheduleReport {
  schedule: string;
  cron: string | null;
  timezone: string | null;
  overlap: string | null;
  catchUp: string | null;
  /** Every slot up to here was decided. */
  cursor: Date;
  /** When the next slot fires (on the database server's clock), or null when unknown or never. */
  nextFiring: Date | null;
  /** A trigger request no scheduler has served yet. */
  pendingTrigger: Date | null;
  /** The newest slots, newest first. */
  lastSlots: SlotRecord[];
}

/** Reads every schedule's head and its last `count` slots; `now` is the server's time (for `pts schedules` and the dashboard). */
export async function readScheduleReports(store: ScheduleStore, now: Date, count: number): Promise<ScheduleReport[]> {
  const reports: ScheduleReport[] = [];
  for (const head of await store.listHeads()) {
    const slots = await store.listSlots(head.schedule);
    reports.push({
      schedule: head.schedule,
      cron: head.description?.cron ?? null,
      timezone: head.description?.timezone ?? null,
      overlap: head.description?.overlap ?? null,
      catchUp: head.description?.catchUp ?? null,
      cursor: head.cursor,
      nextFiring: nextFiring(head, now),
      pendingTrigger: head.trigger?.requestedAt ?? null,
      lastSlots: slots.slice(-count).reverse(),
    });
  }
  return reports;
}

function nextFiring(head: ScheduleHead, now: Date): Date | null {
  if (!head.description) return null;
  try {
    const from = head.cursor.getTime() > now.getTime() ? head.cursor : now;
    return new Cron(head.description.cron, { timezone: head.description.timezone, paused: true }).nextRun(from);
  } catch {
    return null;
  }
}
