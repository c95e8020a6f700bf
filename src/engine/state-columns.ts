import { initialTaskState } from '../store/fold.js';
import type { TaskState, TaskStatus } from '../store/types.js';
import { OUTPUT_NOT_READ } from '../store/types.js';

/** Status codes, as kept in {@link StateColumns.status}; terminal ones from SUCCEEDED up. */
const STATUSES: readonly TaskStatus[] = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'];
const CODE = new Map(STATUSES.map((s, i) => [s, i]));
export const PENDING = 0;
export const RUNNING = 1;
export const SUCCEEDED = 2;
export const FAILED = 3;
export const SKIPPED = 4;
export const isTerminal = (code: number): boolean => code >= SUCCEEDED;

/** The state every task that never moved shares (frozen: states are replaced, never changed). */
const UNTOUCHED: TaskState = Object.freeze(initialTaskState());

/** What a succeeded task keeps besides its token, attempt and end (rare: most succeed first time, with no affinity). */
type SucceededExtras = Pick<TaskState, 'failures' | 'recoveries' | 'lapses' | 'runnerId'>;

/**
 * The task states of a picture, column-wise: a task is an index; its status
 * and position are typed-array entries; a task that never moved holds no
 * state object, nor does a succeeded one (its token, attempt and end are
 * columns); only the others (running, failed, retrying, skipped, cancelled)
 * hold their folded state. A succeeded task's output is held only while its
 * owner says a dependent may need it.
 */
export class StateColumns {
  /** Per task: its status code (PENDING…). */
  status = new Uint8Array(0);
  /** Per task: the log position its state was folded to. */
  token = new Int32Array(0);
  /** A succeeded task's attempt and end (ms; NaN for none). */
  private attempt = new Int32Array(0);
  private endedAt = new Float64Array(0);
  /** Folded states of tasks neither untouched nor succeeded. */
  private readonly states = new Map<number, TaskState>();
  private readonly extras = new Map<number, SucceededExtras>();
  /** Outputs of succeeded tasks some dependent of which has not succeeded yet. */
  private readonly outputs = new Map<number, unknown>();

  /** Empties the columns, with room for `n` tasks, all untouched. */
  reset(n: number): void {
    this.status = new Uint8Array(n);
    this.token = new Int32Array(n);
    this.attempt = new Int32Array(n);
    this.endedAt = new Float64Array(n).fill(Number.NaN);
    this.states.clear();
    this.extras.clear();
    this.outputs.clear();
  }

  /** Task i's state, made anew for a succeeded task (its output {@link OUTPUT_NOT_READ} when not held). */
  get(i: number): TaskState {
    const code = this.status[i]!;
    if (code !== SUCCEEDED) return this.states.get(i) ?? UNTOUCHED;
    const s = Object.create(SUCCEEDED_STATE) as TaskState;
    s.token = this.token[i]!;
    s.attempt = this.attempt[i]!;
    const end = this.endedAt[i]!;
    s.endedAt = Number.isNaN(end) ? null : new Date(end);
    s.output = this.outputs.has(i) ? this.outputs.get(i) : OUTPUT_NOT_READ;
    const extras = this.extras.get(i);
    if (extras) Object.assign(s, extras);
    return s;
  }

  /**
   * Keeps task i's state in the columns (and the few objects some states need).
   * @param keep `affinity`: the task has an affinity key (a success names its
   *   runner, see AffinityJudge); `output`: a success's output may still be read by a dependent
   */
  set(i: number, state: TaskState, keep: { affinity: boolean; output: boolean }): void {
    const code = CODE.get(state.status)!;
    this.status[i] = code;
    this.token[i] = state.token;
    this.states.delete(i);
    this.extras.delete(i);
    this.outputs.delete(i);
    if (code === SUCCEEDED) {
      this.attempt[i] = state.attempt;
      this.endedAt[i] = state.endedAt ? state.endedAt.getTime() : Number.NaN;
      const runnerId = keep.affinity ? state.runnerId : null;
      if (state.failures !== 0 || state.recoveries !== 0 || state.lapses !== 0 || runnerId !== null) {
        this.extras.set(i, { failures: state.failures, recoveries: state.recoveries, lapses: state.lapses, runnerId });
      }
      if (state.output !== OUTPUT_NOT_READ && keep.output) this.outputs.set(i, state.output);
      return;
    }
    if (code === PENDING && state.token === 0) return;
    // Only a succeeded task's output is ever read.
    this.states.set(i, state.output === null || state.output === undefined ? state : { ...state, output: null });
  }

  /** Lets go of task i's output (no dependent will read it from the picture). */
  dropOutput(i: number): void {
    this.outputs.delete(i);
  }

  /** Tasks whose output is held. */
  heldOutputs(): number[] {
    return [...this.outputs.keys()];
  }
}

/**
 * What a succeeded state shares; a task's own token, attempt, end and output
 * are set over it (see `get`). Not frozen: own fields are assigned over
 * it, which a frozen prototype forbids. Never written to. `foldTransitions`
 * reads every field (prototype included) when it continues from such a state.
 */
const SUCCEEDED_STATE: TaskState = { ...initialTaskState(), status: 'succeeded', progress: 1 };
