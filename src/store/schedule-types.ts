/**
 * What schedules persist, in the scheduler's words. The claim of a slot is
 * the insert of its record under a deterministic `_id`: a unique key, not a
 * read-then-write, decides which scheduler process owns the slot. The same
 * holds for a slot's container: a second slot whose factory names an owned
 * container cannot claim it.
 */

/**
 * Where a slot is in its life:
 * - `queued`: claimed; waits for earlier slots of its schedule (overlap `queue`);
 * - `started`: claimed; its container is being created or run;
 * - `skipped`: claimed and deliberately not run (overlap `skip`), see `reason`;
 * - `succeeded` | `failed` | `cancelled`: its container finished so, or (`failed`)
 *   the slot could not run at all, e.g. its container name belongs to another slot (`reason`);
 * - `superseded`: a new definition of the schedule's container conflicts with
 *   the one the slot's container was created with (a deploy mid-slot); the
 *   container is left as it was, see `reason`.
 */
export type SlotState = 'queued' | 'started' | 'skipped' | 'succeeded' | 'failed' | 'cancelled' | 'superseded';

/** Every {@link SlotState}. */
export const SLOT_STATES: readonly SlotState[] = ['queued', 'started', 'skipped', 'succeeded', 'failed', 'cancelled', 'superseded'];

/** Slot states that still need work (a container to start or to finish). */
export const OPEN_SLOT_STATES: ReadonlySet<SlotState> = new Set(['queued', 'started']);

/** Final states a slot is ended with. */
export type EndedSlotState = 'succeeded' | 'failed' | 'cancelled' | 'superseded';

/** One claimed slot of a schedule. */
export interface SlotRecord {
  /** `<schedule>@<slot ISO 8601>`, see {@link slotKey}. */
  id: string;
  schedule: string;
  /** The cron firing time this record is for (or the time a trigger asked for, when `manual`). */
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
  /** True for a slot claimed by `trigger()` / `pts schedules trigger` rather than by the cron. */
  manual: boolean;
}

/** The slot to claim: everything but timestamps set by the store. */
export type NewSlot = Pick<SlotRecord, 'schedule' | 'slot' | 'container' | 'state' | 'reason' | 'claimedBy'> & { manual?: boolean };

/** How a schedule is defined, as written on its head for readers without the code (`pts schedules`). */
export interface ScheduleDescription {
  cron: string;
  timezone: string;
  overlap: string;
  catchUp: string;
}

/** A request to run a slot now, written by `pts schedules trigger` and served by a running scheduler. */
export interface TriggerRequest {
  requestedAt: Date;
  requestedBy: string;
}

/**
 * Per-schedule progress: every slot at or before `cursor` has been decided
 * (claimed by someone, or passed over by the catch-up policy).
 */
export interface ScheduleHead {
  schedule: string;
  cursor: Date;
  /** The definition last opened by a scheduler; null on heads written by older versions. */
  description: ScheduleDescription | null;
  /** A pending trigger request, or null. */
  trigger: TriggerRequest | null;
  /** Last time a scheduler stopped gracefully with unfinished slots of this schedule (others take them over at once). */
  handoverAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Deterministic `_id` of a slot: the schedule name and the slot instant in UTC ISO 8601. */
export const slotKey = (schedule: string, slot: Date): string => `${schedule}@${slot.toISOString()}`;

/** Persistence of schedules: heads, slot claims and container ownership. */
export interface ScheduleStore {
  /**
   * Reads a schedule's head, creating it at `initialCursor` when missing
   * (racing creators: the first insert wins), and writes `description` on it.
   */
  openHead(schedule: string, initialCursor: Date, description?: ScheduleDescription): Promise<ScheduleHead>;
  /** A schedule's head by exact `_id`, or null. */
  getHead(schedule: string): Promise<ScheduleHead | null>;
  /** Every schedule's head, by name (a scan of the small heads collection; for `pts schedules` and the dashboard). */
  listHeads(): Promise<ScheduleHead[]>;
  /** Moves the head's cursor forward to `cursor`; never moves it back. */
  advanceHead(schedule: string, cursor: Date): Promise<void>;
  /** Writes a trigger request on the head; false when the schedule has no head. */
  requestTrigger(schedule: string, request: TriggerRequest): Promise<boolean>;
  /** Clears the head's trigger request if it is still `request` (served). */
  clearTrigger(schedule: string, request: TriggerRequest): Promise<void>;
  /** Stamps `handoverAt`: a scheduler stopped and left started slots for others. */
  signalHandover(schedule: string): Promise<void>;
  /** Claims a slot by inserting its record; false when another scheduler holds it. */
  claimSlot(slot: NewSlot): Promise<boolean>;
  /**
   * Makes `slotId` the owner of `container` (an insert under the container's
   * name); returns the owning slot id (this one when it won or already owned it)
   * and whether this call inserted the ownership.
   */
  claimContainer(container: string, slotId: string): Promise<{ owner: string; inserted: boolean }>;
  /** One slot by schedule and time, or null. */
  getSlot(schedule: string, slot: Date): Promise<SlotRecord | null>;
  /** Queued and started slots of a schedule, oldest first. */
  listOpenSlots(schedule: string): Promise<SlotRecord[]>;
  /** Every slot record of a schedule, oldest first (scans; for inspection and tests). */
  listSlots(schedule: string): Promise<SlotRecord[]>;
  /** Marks a queued (or resumed) slot as started now. */
  markSlotStarted(schedule: string, slot: Date): Promise<void>;
  /** Records an open slot's final state (idempotent: an ended slot is left as it is). */
  finishSlot(schedule: string, slot: Date, state: EndedSlotState, reason?: string | null): Promise<void>;
  /** Removes the ended slot records (succeeded, failed, cancelled, skipped...) of a schedule whose slot is before `before` (retention); returns how many. */
  deleteEndedSlots(schedule: string, before: Date): Promise<number>;
  /**
   * Removes the ownership of containers that no longer exist (retention, after
   * deleting them), so that their names are free again; returns how many went.
   * Never call it for a container that still exists: a later slot mapping to
   * its name would then run on an old container instead of failing.
   */
  releaseContainers(containers: readonly string[]): Promise<number>;
}
