/**
 * A loop-blocking handler with two runners: the first attempt of `slow`
 * computes synchronously far past its lease (6 s lease, 12 s of work in
 * steps of 250 ms, checking `ctx.signal` between them), while both runners
 * also share short tasks. The holder must stop at its first check after its
 * lease could have lapsed (before the other runner may take over), and the
 * task must then run again and succeed, never two attempts at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

it('a loop-blocking handler with two runners', async () => {
  const shape = 'slow:12';
  const s = scenario('blocked-loop', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'blocked', SHAPE: shape, INC: '1',
    LEASE_MS: '6000', HEARTBEAT_MS: '1500', SLOW_STEPS: '48', STEP_MS: '250', STEPS: '3', CONCURRENCY: '3',
    BLOCK_SLOW_FIRST: '1',
  });
  const go = path.join(s.dir, 'go');
  try {
    const runners = ['A', 'B'].map((r) => spawnRunner(s, r, { GO_FILE: go }));
    await Promise.all(runners.map((r) => r.waitForLine('ready', 60_000)));
    fs.writeFileSync(go, '');
    const ends = await Promise.all(runners.map((r) => settle(s, r, 180_000)));
    report(s, await readContainer(db().uriWithDb, 'blocked'), {
      shape,
      extra: { ends: JSON.stringify(ends.map((e) => e.replace('done ', ''))), slowStarts: String(runners.map((r) => r.lines.filter((l) => l.startsWith('started slow')).length).join('/')) },
    });
  } finally {
    await killAll(s);
  }
});
