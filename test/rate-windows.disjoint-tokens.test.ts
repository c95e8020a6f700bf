/**
 * Runners that know each other take disjoint rate-limit tokens first: when
 * a window opens every runner wakes knowing nothing of what the others took,
 * and random picks made most of their inserts fail as duplicates (issue 13:
 * a token found taken costs a failed insert and a read).
 */
import { expect, it } from 'vitest';
import { RateWindows } from '../src/engine/rate-windows.js';
import type { TaskStore } from '../src/store/types.js';

/** Only what RateWindows calls outside a reservation: no server time (the wall clock below is used), a sweep that finds nothing. */
const store = { sweepSlots: async () => 0 } as unknown as TaskStore;
/** Mid-window of a 60 s window. */
const clock = { now: () => 1_800_000_030_000 };

async function runnersOf(ids: string[], known: string[] = ids): Promise<RateWindows[]> {
  const out: RateWindows[] = [];
  for (const id of ids) {
    const r = new RateWindows(store, 'c', { api: { max: 12, perMs: 60_000 } }, clock, id);
    r.setPeers(known);
    await r.refresh();
    out.push(r);
  }
  return out;
}

it('four runners that know each other reserve 12 distinct tokens of a window of 12 (their share of 3 each)', async () => {
  const ids = ['host-a:101:0a1b2c', 'host-a:102:3d4e5f', 'host-b:201:6a7b8c', 'host-b:202:9d0e1f'];
  const runners = await runnersOf(ids);
  const taken: number[] = [];
  for (const r of runners) {
    for (let i = 0; i < 3; i++) {
      const id = r.reserve('api');
      expect(id).not.toBeNull();
      taken.push(id!.index);
    }
    // Its share is in flight: the rest waits for what those learn.
    expect(r.reserve('api')).toBeNull();
  }
  expect(new Set(taken).size).toBe(12);
});

it('alone, a runner owns every token of the window', async () => {
  const [r] = await runnersOf(['only:1:aaaaaa']);
  const taken = Array.from({ length: 12 }, () => r!.reserve('api')!.index);
  expect(taken.sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  expect(r!.reserve('api')).toBeNull();
});
