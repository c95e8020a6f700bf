import { LeaseLostError, NotFoundError } from '../errors.js';
import type { AttemptPatch, TaskEdit, TaskSnapshot, TaskState, TaskStatus, TaskStore } from '../store/types.js';
import { ConcurrentUpdateError } from './errors.js';
import type { StateFields } from './values.js';

const REVIVED_BY_NOT_COMPLETE: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);
const REVIVED_BY_NOT_FAILED: ReadonlySet<TaskStatus> = new Set(['failed', 'skipped', 'cancelled']);

/** Times an edit is retried after another writer moved the task first. */
const MAX_EDIT_ATTEMPTS = 8;

/**
 * Turns 0.0.1 state fields into the fields of one `edited` transition, given
 * the task's current state:
 * - `hasFailed: true` → failed, with or without `isComplete: true` (0.0.1:
 *   "hasFailed is true only when isComplete is true as well", so
 *   `{ isComplete: true, hasFailed: true }` is how 0.0.1 code records a
 *   failure); `isComplete: true` alone → succeeded;
 * - a false flag on a finished task makes it pending again: `isComplete:
 *   false` revives any finished task (a failed task counts as complete),
 *   `hasFailed: false` a failed, skipped or cancelled one (not a succeeded one);
 * - when the status changes to succeeded/failed and `taskEndedAt` is not
 *   given, the end time is now; when it goes back to pending, the end time is
 *   cleared — so `taskDurationInMilliseconds` stays meaningful.
 */
export function toTaskEdit(fields: StateFields, current: TaskState, now: Date): TaskEdit {
  const { isComplete, hasFailed, ...direct } = fields;
  const set: TaskEdit = Object.fromEntries(Object.entries(direct).filter(([, v]) => v !== undefined));
  let status: TaskStatus | undefined;
  if (hasFailed === true) status = 'failed';
  else if (isComplete === true) status = 'succeeded';
  else if (isComplete === false && REVIVED_BY_NOT_COMPLETE.has(current.status)) status = 'pending';
  else if (hasFailed === false && REVIVED_BY_NOT_FAILED.has(current.status)) status = 'pending';
  if (status !== undefined && status !== current.status) {
    set.status = status;
    if (direct.endedAt === undefined) set.endedAt = status === 'pending' ? null : now;
  }
  return set;
}

/**
 * Appends one `edited` transition at the task's next log position. When
 * another writer takes that position first, re-reads the task and tries again
 * (a few times), then throws {@link ConcurrentUpdateError}. `known` is a
 * state just read, to save the first read.
 */
export async function editTaskState(
  store: TaskStore,
  container: string,
  task: string,
  fields: StateFields,
  known?: TaskState,
): Promise<void> {
  let state = known;
  for (let attempt = 1; attempt <= MAX_EDIT_ATTEMPTS; attempt++) {
    state ??= (await readTask(store, container, task)).state;
    const set = toTaskEdit(fields, state, new Date());
    if (Object.keys(set).length === 0) return; // nothing would change
    const inPlace = inPlacePatch(set, state, container, task);
    if (inPlace) {
      // Progress, status text or processing data of a running attempt: written
      // on its claim, so the attempt keeps its position (and its lease).
      try {
        await store.updateAttempt(inPlace.claim, inPlace.patch);
        return;
      } catch (error) {
        if (!(error instanceof LeaseLostError)) throw error;
        state = undefined; // it moved on meanwhile: read it again
        continue;
      }
    }
    if (await store.settleTask(container, task, state.token, { kind: 'edited', set })) return;
    state = undefined;
    await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
  }
  throw new ConcurrentUpdateError(container, task, MAX_EDIT_ATTEMPTS);
}

const IN_PLACE_FIELDS: ReadonlySet<string> = new Set(['progress', 'statusText', 'checkpoint']);

/**
 * For an edit of a running attempt that only sets progress, status text or
 * processing data: the claim to write them on, in place. Only a status change
 * (or a field the claim does not hold) appends an `edited` transition.
 */
function inPlacePatch(
  set: TaskEdit,
  state: TaskState,
  container: string,
  task: string,
): { claim: Parameters<TaskStore['updateAttempt']>[0]; patch: AttemptPatch } | null {
  if (state.status !== 'running' || state.claimToken === null || state.claimToken !== state.token) return null;
  if (!Object.keys(set).every((k) => IN_PLACE_FIELDS.has(k))) return null;
  const patch: AttemptPatch = {};
  if (set.progress !== undefined) {
    patch.progress = set.progress;
    patch.progressAt = new Date();
  }
  if (set.statusText !== undefined) patch.statusText = set.statusText;
  if (set.checkpoint !== undefined) {
    patch.checkpoint = set.checkpoint;
    patch.checkpointProgress = set.progress ?? state.progress;
  }
  const claim = {
    container,
    task,
    token: state.claimToken,
    attempt: state.attempt,
    runnerId: state.runnerId ?? '',
    claimedAt: state.startedAt ?? new Date(),
    leaseUntil: state.leaseUntil ?? new Date(),
    progress: state.startProgress,
  };
  return { claim, patch };
}

/** The task alone (a fixed number of commands); {@link NotFoundError} when it or its container is gone. */
async function readTask(store: TaskStore, container: string, task: string): Promise<TaskSnapshot> {
  const read = await store.loadTask(container, task);
  if (!read) throw new NotFoundError('container', container);
  if (!read.task) throw new NotFoundError('task', task, `not in container "${container}"`);
  return read.task;
}
