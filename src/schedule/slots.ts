import { ContainerBuilder } from '../definition/define.js';
import { assertValidGraph } from '../definition/graph.js';
import { assertSafeName } from '../definition/names.js';
import type { ContainerDefinition } from '../definition/types.js';
import { InvalidSlotDefinitionError } from '../errors.js';
import type { ScheduleDefinition } from './define.js';

/** Which due slots a tick runs and which it passes over, per the catch-up policy. */
export interface SlotPlan {
  /** Slots to claim, oldest first. */
  run: Date[];
  /** Missed slots passed over (not written), oldest first; may be cut to the enumeration bound. */
  passed: Date[];
  /** True when more missed slots existed than were enumerated (`catchUpLimit` + 1). */
  truncated: boolean;
  /** The newest due slot: the head's cursor moves here. */
  newest: Date | null;
}

/**
 * Slots in (`cursor`, `now`], newest first, at most `limit` of them (croner's
 * `previousRuns`; a slot exactly at `now` is due). `more` is true when older
 * due slots were left out.
 */
export function dueSlots(schedule: ScheduleDefinition, cursor: Date, now: Date, limit: number): { slots: Date[]; more: boolean } {
  const next = schedule.pattern.nextRun(cursor);
  if (!next || next.getTime() > now.getTime()) return { slots: [], more: false };
  const found = schedule.pattern.previousRuns(limit + 1, new Date(now.getTime() + 1));
  const slots = found.filter((s) => s.getTime() > cursor.getTime() && s.getTime() <= now.getTime());
  return { slots: slots.slice(0, limit), more: slots.length > limit };
}

/**
 * Applies the catch-up policy. A due slot older than `now - graceMs` is
 * missed; on-time slots always run. `latest`: also the newest due slot;
 * `all`: every missed slot within the bound; `none`: no missed slot.
 */
export function planSlots(schedule: ScheduleDefinition, cursor: Date, now: Date): SlotPlan {
  const { slots, more } = dueSlots(schedule, cursor, now, schedule.catchUpLimit);
  const newestFirst = slots;
  const newest = newestFirst[0] ?? null;
  const lateBefore = now.getTime() - schedule.graceMs;
  const run: Date[] = [];
  const passed: Date[] = [];
  for (const [i, slot] of newestFirst.entries()) {
    const onTime = slot.getTime() >= lateBefore;
    const keep = onTime || schedule.catchUp === 'all' || (schedule.catchUp === 'latest' && i === 0);
    (keep ? run : passed).push(slot);
  }
  return { run: run.reverse(), passed: passed.reverse(), truncated: more, newest };
}

/** The latest cron firing at or before `at` (the slot a trigger runs when nobody claimed it), or null. */
export function triggerSlot(schedule: ScheduleDefinition, at: Date): Date | null {
  return schedule.pattern.previousRuns(1, new Date(at.getTime() + 1))[0] ?? null;
}

/**
 * Calls the factory and validates what it returns, before anything is
 * written: a builder is built (full graph validation), a definition is
 * checked for a safe name and a valid graph.
 * @throws {@link InvalidSlotDefinitionError} when the factory throws or returns anything else
 */
export async function buildSlotContainer(schedule: ScheduleDefinition, slot: Date): Promise<ContainerDefinition> {
  let value: unknown;
  try {
    value = await schedule.container(new Date(slot));
  } catch (error) {
    throw new InvalidSlotDefinitionError(schedule.name, slot, `it threw: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  try {
    if (value instanceof ContainerBuilder) return value.build();
    if (!isDefinition(value)) {
      throw new Error('it must return defineContainer(...) or a built ContainerDefinition, got ' + describe(value));
    }
    assertSafeName('container', value.name);
    assertValidGraph(value.tasks);
    return value;
  } catch (error) {
    throw new InvalidSlotDefinitionError(schedule.name, slot, (error as Error).message, { cause: error });
  }
}

function isDefinition(v: unknown): v is ContainerDefinition {
  const d = v as ContainerDefinition | null;
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.failFast === 'boolean' &&
    Array.isArray(d.tasks) &&
    d.tasks.every((t) => typeof t?.name === 'string' && typeof t.handlerName === 'string' && Array.isArray(t.dependsOn)) &&
    typeof d.handlers === 'object' &&
    d.handlers !== null
  );
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v !== 'object') return typeof v;
  return `an object with keys ${Object.keys(v).slice(0, 5).join(', ') || '(none)'}`;
}
