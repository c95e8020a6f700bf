/**
 * A rate limit across runners under crashes: four runner processes of
 * concurrency 4 on one container whose tasks share
 * `groups: { api: { rate: { max: 3, perMs: 1000 } } }`. One runner's wall
 * clock is 1.5 s ahead (windows are judged on the server's clock, never a
 * runner's), two are SIGKILLed mid-run (their attempts are taken over, and
 * each takeover needs a token too), one is SIGSTOPped past its lease (a
 * zombie) and woken later, and a fresh one joins. The side-effect log, in the
 * machine's real wall time, proves that no window of 1000 ms of the server's
 * clock (the same machine's) saw more than 3 starts, beside the five usual properties.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { readJsonl } from '../support/side-effects.js';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import type { ChaosRecord } from './support/check.js';
import { freezeRunner, killAll, killRunner, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

const MAX = 3;
const PER_MS = 1000;

it('rate limit: 4 runners, a skewed clock, SIGKILLs and a zombie, never more than max starts per window', async () => {
  const shape = 'flat:24';
  const s = scenario('rate-limit', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'rated', SHAPE: shape, INC: '1',
    LEASE_MS: '2000', HEARTBEAT_MS: '500', STEPS: '4', STEP_MS: '150', CONCURRENCY: '4',
    TASK_GROUP: 'api', GROUPS: JSON.stringify({ api: { rate: { max: MAX, perMs: PER_MS } } }),
  });
  const go = path.join(s.dir, 'go');
  try {
    const [r1, r2, r3, r4] = ['R1', 'R2', 'R3', 'R4'].map((r) =>
      spawnRunner(s, r, { GO_FILE: go, ...(r === 'R4' ? { CHAOS_CLOCK_SKEW_MS: '1500' } : {}) }),
    );
    await Promise.all([r1, r2, r3, r4].map((r) => r!.waitForLine('ready', 60_000)));
    fs.writeFileSync(go, '');
    await sleep(1700);
    await killRunner(s, r1!);
    freezeRunner(s, r2!, true);
    await sleep(1500);
    await killRunner(s, r3!);
    const r5 = spawnRunner(s, 'R5');
    await sleep(2500); // the zombie is frozen for 4 s, twice its lease
    freezeRunner(s, r2!, false);
    const ends = await Promise.all([r2!, r4!, r5].map((r) => settle(s, r, 180_000)));
    const starts = readJsonl<ChaosRecord & { wall?: number }>(s.log).filter((r) => r.ev === 'start');
    const windows = new Map<number, number>();
    for (const r of starts) windows.set(Math.floor(r.wall! / PER_MS), (windows.get(Math.floor(r.wall! / PER_MS)) ?? 0) + 1);
    const most = Math.max(...windows.values());
    report(s, await readContainer(db().uriWithDb, 'rated'), { shape, extra: { mostStartsPerWindow: most, starts: starts.length, ends: JSON.stringify(ends) } });
    expect(most, `starts per window: ${JSON.stringify([...windows])}; log: ${s.log}`).toBeLessThanOrEqual(MAX);
    // The limit is a limit, not a lock: some window was full. Takeovers of the killed runners' attempts started too.
    expect(most).toBe(MAX);
    expect(starts.length).toBeGreaterThan(24);
    // Spent tokens are swept once their window is over: what is left is a few windows' worth, not one per start.
    const left = await db().connection.collection('pts_slots').countDocuments({ container: 'rated' });
    expect(left, `token documents left of ${starts.length} starts`).toBeLessThanOrEqual(MAX * 4);
  } finally {
    await killAll(s);
  }
});
