import path from 'node:path';
import { expect, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

it('tasks staged by an attempt SIGKILLed before its success never exist; the next attempt stages them again and they run once', async () => {
  const log = sideEffectLog<{ runner: string; event: string; task?: string; added?: string[] }>(
    path.join(makeTempDir(), 'effects.jsonl'),
  );
  const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'dynamic', LOG: log.path, LEASE_MS: '1000', CONCURRENCY: '2' };

  const first = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'A' });
  await first.waitForLine('tasks-added 6');
  await first.kill('SIGKILL');

  // Staged under the dead attempt: not part of the container (its success was never recorded).
  const mid = await snapshotOf(db().connection, 'dynamic');
  expect(mid.tasks.map((t) => t.record.name)).toEqual(['discover']);
  expect(stateOf(mid, 'discover').status).toBe('running');

  const second = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'B' });
  await second.waitForLine('done succeeded', 30_000);

  const entries = log.read();
  // The attempt that succeeded staged them again, in place of the dead attempt's.
  expect(entries.filter((e) => e.event === 'added').map((e) => [e.runner, e.added?.length])).toEqual([
    ['A', 6],
    ['B', 6],
  ]);
  const end = await snapshotOf(db().connection, 'dynamic');
  expect(end.container.status).toBe('succeeded');
  expect(end.tasks).toHaveLength(7);
  expect(end.tasks.filter((t) => t.record.dynamic).every((t) => t.record.addedBy === 'discover')).toBe(true);
  expect(stateOf(end, 'import-all').output).toEqual(['A', 'B', 'C', 'D', 'E']);
  for (const f of ['a', 'b', 'c', 'd', 'e']) {
    expect(entries.filter((e) => e.event === 'finish' && e.task === `download-${f}`)).toHaveLength(1);
  }
});
