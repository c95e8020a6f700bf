import { describe, expect, it } from 'vitest';
import { ContainerView } from '../src/engine/view.js';
import { DEFAULT_TASK_OPTIONS } from '../src/definition/options.js';
import { initialTaskState } from '../src/store/fold.js';
import type { Transition } from '../src/store/transition.js';
import { OUTPUT_NOT_READ, type ContainerSnapshot, type TaskSnapshot } from '../src/store/types.js';

const at = new Date(1_700_000_000_000);

/** a → b, a → c; b has an input; d depends on a task missing from the picture. */
function snapshot(): ContainerSnapshot {
  const task = (name: string, order: number, dependsOn: string[], input: unknown = null): TaskSnapshot => ({
    record: {
      container: 'c',
      name,
      dependsOn,
      handler: name,
      input,
      options: { ...DEFAULT_TASK_OPTIONS },
      dynamic: false,
      addedBy: null,
      stagedBy: null,
      order,
      createdAt: at,
    },
    state: initialTaskState(),
  });
  return {
    container: { name: 'c', status: 'running', failFast: false, definition: null, createdAt: at, updatedAt: at, finishedAt: null, cancelRequestedAt: null },
    tasks: [task('a', 0, []), task('b', 1, ['a'], { rows: [1, 2, 3] }), task('c', 2, ['a']), task('d', 3, ['gone'])],
    readAt: at,
  };
}

/** The log entries of one attempt of `task` from position `token`: a claim, then a success with `output`. */
function ranOnce(task: string, token: number, output: unknown): Transition[] {
  return [
    { container: 'c', task, token, kind: 'claimed', at, attempt: 1, runnerId: 'r', leaseUntil: new Date(at.getTime() + 10_000) },
    { container: 'c', task, token: token + 1, kind: 'succeeded', at, output },
  ] as Transition[];
}

describe('a column-wise picture', () => {
  it('holds no input, and a succeeded output only while a dependent has not succeeded', () => {
    const view = new ContainerView(snapshot());
    expect(view.get('b')!.record.input).toBeNull();
    expect(view.hasInput('b')).toBe(true);
    expect(view.hasInput('a')).toBe(false);

    expect(view.apply('a', ranOnce('a', 1, { n: 1 }))).toBe(true);
    expect(view.get('a')!.state).toMatchObject({ status: 'succeeded', token: 2, attempt: 1, output: { n: 1 } });
    view.apply('b', ranOnce('b', 1, 'b-out'));
    // c still waits for a's output.
    expect(view.get('a')!.state.output).toEqual({ n: 1 });
    // No dependent of b: its output is not held.
    expect(view.get('b')!.state.output).toBe(OUTPUT_NOT_READ);
    view.apply('c', ranOnce('c', 1, 'c-out'));
    // Every dependent of a succeeded: read from the store if ever needed.
    expect(view.get('a')!.state.output).toBe(OUTPUT_NOT_READ);
    expect(view.get('a')!.state).toMatchObject({ status: 'succeeded', token: 2, attempt: 1, endedAt: at });
  });

  it('offers a task once its dependencies succeeded, and never one whose dependency is missing', () => {
    const view = new ContainerView(snapshot());
    const offered = () => {
      const names: string[] = [];
      for (let t = view.nextCandidate(); t; t = view.nextCandidate()) names.push(t.record.name);
      return names;
    };
    expect(offered()).toEqual(['a']);
    view.apply('a', ranOnce('a', 1, null));
    expect(offered()).toEqual(['b', 'c']);
    expect(view.runningNames()).toEqual([]);
    view.apply('b', [{ container: 'c', task: 'b', token: 1, kind: 'claimed', at, attempt: 1, runnerId: 'r' } as Transition]);
    expect(view.runningNames()).toEqual(['b']);
    expect(view.activeNames().sort()).toEqual(['b', 'c', 'd']);
  });

  it('hands the planner the changed tasks a plan can settle, once', () => {
    const view = new ContainerView(snapshot());
    const changed = () => [...view.takeChanged(2)].flat().map((t) => t.record.name).sort();
    // Pending tasks with dependencies; a (none) cannot be settled by a plan.
    expect(changed()).toEqual(['b', 'c', 'd']);
    expect(changed()).toEqual([]);
    view.apply('a', [{ container: 'c', task: 'a', token: 1, kind: 'skipped', at, reason: 'by hand' } as Transition]);
    // a (skipped: its skip may be undone) and its dependents.
    expect(changed()).toEqual(['a', 'b', 'c']);
  });
});
