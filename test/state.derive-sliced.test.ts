import { describe, expect, it } from 'vitest';
import { deriveContainerState, deriveContainerStateSliced } from '../src/store/container-state.js';
import { initialTaskState } from '../src/store/fold.js';
import type { ContainerRecord, TaskSnapshot, TaskStatus } from '../src/store/types.js';
import { TimeSlice } from '../src/time-slice.js';

const at = (ms: number) => new Date(1_700_000_000_000 + ms);

function container(over: Partial<ContainerRecord>): ContainerRecord {
  return { name: 'c', status: 'running', failFast: false, definition: null, createdAt: at(0), updatedAt: at(1), finishedAt: null, cancelRequestedAt: null, ...over };
}

function task(name: string, status: TaskStatus, endMs: number | null): TaskSnapshot {
  const state = { ...initialTaskState(), status, endedAt: endMs === null ? null : at(endMs) };
  return { record: { container: 'c', name, dependsOn: [], handler: name, input: null, options: {} as never, dynamic: false, addedBy: null, stagedBy: null, order: 0, createdAt: at(0) }, state };
}

describe('the container state derived in slices (a large container read without blocking the event loop)', () => {
  it('equals the state derived at once, for every kind of container', async () => {
    const n = 3000;
    const names = Array.from({ length: n }, (_, i) => `t${i}`);
    const declared = names.map((name) => ({ name, dependsOn: [] }));
    const all = (status: TaskStatus) => names.map((name, i) => task(name, status, status === 'pending' ? null : i));
    const mixed = names.map((name, i) => task(name, i === n - 1 ? 'failed' : 'succeeded', 5000 - i));
    const oneRunning = names.map((name, i) => task(name, i === 1500 ? 'running' : 'succeeded', i));
    const cases: Array<[ContainerRecord, TaskSnapshot[]]> = [
      [container({ definition: declared }), all('succeeded')],
      [container({ definition: declared }), mixed],
      [container({ definition: declared }), oneRunning],
      [container({ definition: declared }), all('succeeded').slice(1)], // a declared task missing
      [container({ definition: [...declared, { name: 'late', dependsOn: [] }] }), all('succeeded')],
      [container({ definition: null }), []],
      [container({ definition: null }), all('skipped')],
      [container({ definition: declared, cancelRequestedAt: at(99_999) }), all('pending')],
      [container({ definition: declared, cancelRequestedAt: at(10) }), mixed],
      [container({ definition: declared, cancelRequestedAt: at(10) }), all('succeeded')],
      [container({ definition: declared, finishedAt: at(7) }), all('cancelled').map((t) => ({ ...t, state: { ...t.state, endedAt: null } }))],
    ];
    for (const [c, tasks] of cases) {
      const slice = new TimeSlice(0);
      expect(await deriveContainerStateSliced(c, tasks, slice)).toEqual(deriveContainerState(c, tasks));
      if (tasks.length >= 3000) expect(slice.yields).toBeGreaterThan(50);
    }
  });
});
