import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

it('two runner processes share one container and no task runs twice', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<{ runner: string; event: string; task: string }>(path.join(dir, 'effects.jsonl'));
  const goFile = path.join(dir, 'go');
  const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'many', LOG: log.path, LEASE_MS: '5000', GO_FILE: goFile };
  const runners = ['A', 'B'].map((r) => spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: r }));
  await Promise.all(runners.map((r) => r.waitForLine('ready')));
  fs.writeFileSync(goFile, 'go');
  await Promise.all(runners.map((r) => r.waitForLine('done succeeded', 45_000)));

  const starts = log.read().filter((e) => e.event === 'start');
  const byTask = new Map<string, string[]>();
  for (const s of starts) byTask.set(s.task, [...(byTask.get(s.task) ?? []), s.runner]);
  const snapshot = await snapshotOf(db().connection, 'many');
  expect(snapshot.tasks).toHaveLength(22);
  expect(byTask.size).toBe(22);
  for (const [task, ranBy] of byTask) expect(ranBy, `${task} ran ${ranBy.length} times`).toHaveLength(1);
  // Both processes really took part.
  const perRunner = (r: string) => starts.filter((s) => s.runner === r).length;
  expect(perRunner('A')).toBeGreaterThan(0);
  expect(perRunner('B')).toBeGreaterThan(0);
  expect(snapshot.tasks.every((t) => t.state.status === 'succeeded' && t.state.attempt === 1)).toBe(true);
});
