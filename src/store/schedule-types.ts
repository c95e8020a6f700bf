/**
 * What schedules persist, in the scheduler's words. The claim of a slot is
 * the insert of its record under a deterministic `_id`: a unique key, not a
 * read-then-write, decides which scheduler process owns the slot.
 */

/**
 * Where a slot is in its life:
 * - `queued`: claimed; waits for earlier slots of its schedule (overlap `queue`);
 * - `started`: claimed; its container is being created or run;
 * - `skipped`: claimed and deliberately not run (overlap `skip`), see `reason`;
 * - `succeeded` | `failed` | `cancelled`: its container finished so.
 */
export type SlotState = 'queued' | 'started' | 'skipped' | 'succeeded' | 'failed' | 'cancelled';

/** Slot states that still need work (a container to start or to finish). */
export const OPEN_SLOT_STATES: ReadonlySet<SlotState> = new Set(['queued', 'started']);

/** One claimed slot of a schedule. */
export interface SlotRecord {
  /** `<schedule>@<slot ISO 8601>`, see {@link slotKey}. */
  id: string;
  schedule: string;
  /** The cron firing time this record is for. */
  slot: Date;
  /** Name of the slot's container (from the schedule's factory). */
  container: string;
  state: SlotState;
  /** Why the slot was skipped or queued, or how it failed outside its container. */
  reason: string | null;
  /** Runner id of the scheduler that claimed it. */
  claimedBy: string;
  claimedAt: Date;
  /** When the container was (last) started; null while queued. */
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** The slot to claim: everything but timestamps set by the store. */
export type NewSlot = Pick<SlotRecord, 'schedule' | 'slot' | 'container' | 'state' | 'reason' | 'claimedBy'>;

/**
 * Per-schedule progress: every slot at or before `cursor` has been decided
 * (claimed by someone, or passed over by the catch-up policy).
 */
export interface ScheduleHead {
  schedule: string;
  cursor: Date;
  createdAt: Date;
  updatedAt: Date;
}

/** Deterministic `_id` of a slot: the schedule name and the slot instant in UTC ISO 8601. */
export const slotKey = (schedule: string, slot: Date): string => `${schedule}@${slot.toISOString()}`;

/** Persistence of schedules: heads and slot claims. */
export interface ScheduleStore {
  /** Reads a schedule's head, creating it at `initialCursor` when missing (racing creators: the first insert wins). */
  openHead(schedule: string, initialCursor: Date): Promise<ScheduleHead>;
  /** Moves the head's cursor forward to `cursor`; never moves it back. */
  advanceHead(schedule: string, cursor: Date): Promise<void>;
  /** Claims a slot by inserting its record; false when another scheduler holds it. */
  claimSlot(slot: NewSlot): Promise<boolean>;
  /** One slot by schedule and time, or null. */
  getSlot(schedule: string, slot: Date): Promise<SlotRecord | null>;
  /** Queued and started slots of a schedule, oldest first. */
  listOpenSlots(schedule: string): Promise<SlotRecord[]>;
  /** Every schedule's head, by name (for inspection: the dashboard). Optional for other stores. */
  listHeads?(): Promise<ScheduleHead[]>;
  /** Every slot record of a schedule, oldest first (scans; for inspection and tests). */
  listSlots(schedule: string): Promise<SlotRecord[]>;
  /** Marks a queued (or resumed) slot as started now. */
  markSlotStarted(schedule: string, slot: Date): Promise<void>;
  /** Records a slot's final state (idempotent). */
  finishSlot(schedule: string, slot: Date, state: 'succeeded' | 'failed' | 'cancelled', reason?: string | null): Promise<void>;
  /** Removes the ended slot records (succeeded, failed, cancelled, skipped) of a schedule whose slot is before `before` (retention); returns how many. */
  deleteEndedSlots(schedule: string, before: Date): Promise<number>;
}
