import { describe, expect, it } from 'vitest';
import { ContainerView } from '../src/engine/view.js';
import { DEFAULT_TASK_OPTIONS } from '../src/definition/options.js';
import { initialTaskState } from '../src/store/fold.js';
import { TimeSlice } from '../src/time-slice.js';
import type { ContainerSnapshot, TaskSnapshot } from '../src/store/types.js';

/**
 * 12,000 tasks (more than two build chunks): task i depends on task i + 5,000
 * (a later chunk), so dependencies cross chunk boundaries; every third task succeeded.
 */
function snapshot(): ContainerSnapshot {
  const n = 12_000;
  const tasks: TaskSnapshot[] = [];
  for (let i = 0; i < n; i++) {
    const state = initialTaskState();
    if (i % 3 === 0) Object.assign(state, { status: 'succeeded', token: 2, attempt: 1, endedAt: new Date(1_700_000_000_000) });
    tasks.push({
      record: {
        container: 'c',
        name: `t${i}`,
        dependsOn: i + 5_000 < n ? [`t${i + 5_000}`] : [],
        handler: 'h',
        input: null,
        options: { ...DEFAULT_TASK_OPTIONS },
        dynamic: false,
        addedBy: null,
        stagedBy: null,
        order: i,
        createdAt: new Date(1_700_000_000_000),
      },
      state,
    });
  }
  const declared = tasks.map((t) => ({ name: t.record.name, dependsOn: t.record.dependsOn }));
  const now = new Date(1_700_000_000_000);
  return {
    container: { name: 'c', status: 'running', failFast: false, definition: declared, createdAt: now, updatedAt: now, finishedAt: null, cancelRequestedAt: null },
    tasks,
    readAt: now,
  };
}

/** Every candidate the view offers, in order. */
function candidates(view: ContainerView): string[] {
  const out: string[] = [];
  for (let t = view.nextCandidate(); t; t = view.nextCandidate()) out.push(t.record.name);
  return out;
}

describe('a large picture built in chunks', () => {
  it('offers the same candidates, in the same order, with the same sets, as one built at once', async () => {
    const atOnce = new ContainerView(snapshot());
    const inChunks = await ContainerView.build(snapshot());
    expect(inChunks.activeNames().sort()).toEqual(atOnce.activeNames().sort());
    expect(inChunks.dirtyNames().sort()).toEqual(atOnce.dirtyNames().sort());
    expect(inChunks.complete).toBe(true);
    expect(inChunks.allTerminal).toBe(false);
    expect(inChunks.dependentsOf('t5000')).toEqual(['t0']);
    const offered = candidates(inChunks);
    expect(offered).toEqual(candidates(atOnce));
    // Pending tasks whose dependency succeeded (or that have none), in declaration order.
    const expected = snapshot()
      .tasks.filter((t, i) => i % 3 !== 0 && (i + 5_000 >= 12_000 || (i + 5_000) % 3 === 0))
      .map((t) => t.record.name);
    expect(offered).toEqual(expected);
  });

  it('is the same when the event loop is let through every few tasks (slices of no time at all)', async () => {
    const slice = new TimeSlice(0);
    const sliced = await ContainerView.build(snapshot(), undefined, slice);
    // Every 32nd task, over three passes: slice boundaries fall everywhere.
    expect(slice.yields).toBeGreaterThan(500);
    const atOnce = new ContainerView(snapshot());
    expect(sliced.activeNames()).toEqual(atOnce.activeNames());
    expect(sliced.dirtyNames().sort()).toEqual(atOnce.dirtyNames().sort());
    expect(sliced.dependentsOf('t5000')).toEqual(['t0']);
    expect(candidates(sliced)).toEqual(candidates(atOnce));
  });
});
