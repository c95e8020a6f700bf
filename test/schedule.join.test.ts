/**
 * Scheduler option `join`: a scheduler that finds a slot claimed and started
 * by another runs its container beside it (each task still once), instead of
 * idling until the other dies.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { getContainerStatus } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

it('two schedulers with join: one claims the slot, the other runs its container beside it, and each task runs once', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<{ proc: string; task: string; attempt: number }>(path.join(dir, 'effects.jsonl'));
  const go = path.join(dir, 'go');
  const env = { MONGODB_URI: db().uriWithDb, LOG: log.path, START_AT: '2026-11-29T13:30:00Z', SLOT: '2026-11-29T14:00:05Z', GO_FILE: go, TASKS: '16' };
  const procs = ['A', 'B'].map((NAME) => spawnTsChild('test/fixtures/join-scheduler-child.ts', [], { ...env, NAME }, { label: `scheduler-${NAME}` }));
  await Promise.all(procs.map((p) => p.waitForLine('ready', 60_000)));
  fs.writeFileSync(go, '');
  await Promise.all(procs.map((p) => p.waitForLine('done', 180_000)));
  const outcomes = procs.flatMap((p) => p.lines.filter((l) => l.startsWith('outcome'))).sort();
  expect(outcomes).toEqual(['outcome started', 'outcome taken']);
  // The scheduler that found it taken started a runner on it too.
  for (const p of procs) expect(p.lines.some((l) => l.startsWith('slot-started join-2026-11-29T14'))).toBe(true);

  const effects = log.read();
  expect(effects.map((e) => e.task).sort()).toEqual(Array.from({ length: 16 }, (_, i) => `t${i}`).sort());
  expect(effects.every((e) => e.attempt === 1)).toBe(true);
  expect(new Set(effects.map((e) => e.proc))).toEqual(new Set(['A', 'B']));
  expect((await getContainerStatus('join-2026-11-29T14', { connection: db().connection })).status).toBe('succeeded');
});
