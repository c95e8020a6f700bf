/**
 * Four runner processes started together on one container of 160 tasks:
 * every task runs once, never two at a time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

it('four runners on one container', async () => {
  const shape = 'flat:160';
  const s = scenario('four-runners', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'four', SHAPE: shape, INC: '1',
    LEASE_MS: '3000', HEARTBEAT_MS: '750', STEPS: '3', STEP_MS: '40', CONCURRENCY: '4',
  });
  const go = path.join(s.dir, 'go');
  try {
    const runners = ['R1', 'R2', 'R3', 'R4'].map((r) => spawnRunner(s, r, { GO_FILE: go }));
    await Promise.all(runners.map((r) => r.waitForLine('ready', 60_000)));
    fs.writeFileSync(go, '');
    const ends = await Promise.all(runners.map((r) => settle(s, r, 180_000)));
    const perRunner = runners.map((r) => r.lines.filter((l) => l.startsWith('started ')).length).join('/');
    report(s, await readContainer(db().uriWithDb, 'four'), {
      shape,
      extra: { ends: JSON.stringify(ends.map((e) => e.replace('done ', ''))), startsPerRunner: perRunner },
    });
  } finally {
    await killAll(s);
  }
});
