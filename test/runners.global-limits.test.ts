/**
 * Limits across runners, held in the database: runner processes on one
 * container never run more attempts of a group (or of the container) at
 * once than its global limit, whatever each runner's own concurrency.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

interface Effect {
  runner: string;
  event: 'start' | 'finish';
  task: string;
  at: number;
}

/** Most attempts running at once in a side-effect log (from each start to its finish). */
export function maxRunning(effects: readonly Effect[]): number {
  const events = effects.map((e) => [e.at, e.event === 'start' ? 1 : -1] as const);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (open += d));
  return max;
}

async function runShared(env: Record<string, string>, runners: string[]): Promise<Effect[]> {
  const dir = makeTempDir();
  const log = sideEffectLog<Effect>(path.join(dir, 'effects.jsonl'));
  const goFile = path.join(dir, 'go');
  const children = runners.map((r) => spawnTsChild('test/fixtures/shared-runner-child.ts', [], { ...env, LOG: log.path, GO_FILE: goFile, MONGODB_URI: db().uriWithDb, RUNNER: r }));
  await Promise.all(children.map((c) => c.waitForLine('ready', 60_000)));
  fs.writeFileSync(goFile, 'go');
  await Promise.all(children.map((c) => c.waitForLine('done succeeded', 180_000)));
  return log.read();
}

it('a global group limit holds across three runner processes of concurrency 4', async () => {
  const effects = await runShared(
    {
      CONTAINER: 'global-group', TASKS: '18', TASK_MS: '150', TASK_OPTIONS: JSON.stringify({ group: 'api' }),
      OPTIONS: JSON.stringify({ concurrency: 4, pollMs: 100, groups: { api: { global: 2 } } }),
    },
    ['A', 'B', 'C'],
  );
  const starts = effects.filter((e) => e.event === 'start');
  expect(new Set(starts.map((s) => s.task)).size).toBe(18);
  expect(starts).toHaveLength(18);
  expect(maxRunning(effects)).toBeLessThanOrEqual(2);
  // The limit is a limit, not a lock: two ran together at some point.
  expect(maxRunning(effects)).toBe(2);
}, 300_000);

it('globalConcurrency holds across two runner processes, with a per-runner group limit beside it', async () => {
  const effects = await runShared(
    {
      CONTAINER: 'global-all', TASKS: '16', TASK_MS: '150', TASK_OPTIONS: JSON.stringify({ group: 'io' }),
      OPTIONS: JSON.stringify({ concurrency: 4, pollMs: 100, globalConcurrency: 3, groups: { io: 2 } }),
    },
    ['A', 'B'],
  );
  expect(effects.filter((e) => e.event === 'start')).toHaveLength(16);
  expect(maxRunning(effects)).toBeLessThanOrEqual(3);
  for (const r of ['A', 'B']) expect(maxRunning(effects.filter((e) => e.runner === r))).toBeLessThanOrEqual(2);
}, 300_000);

/** Starts per fixed window of `perMs` ms (windows aligned on the epoch, as the server's clock is; one machine here). */
export function startsPerWindow(effects: readonly Effect[], perMs: number): Map<number, number> {
  const windows = new Map<number, number>();
  for (const e of effects) if (e.event === 'start') windows.set(Math.floor(e.at / perMs), (windows.get(Math.floor(e.at / perMs)) ?? 0) + 1);
  return windows;
}

it('a rate limit holds across three runner processes: no window of the server clock sees more than max starts', async () => {
  const perMs = 1000;
  const effects = await runShared(
    {
      CONTAINER: 'rate-group', TASKS: '21', TASK_MS: '50', TASK_OPTIONS: JSON.stringify({ group: 'api' }),
      OPTIONS: JSON.stringify({ concurrency: 4, pollMs: 100, groups: { api: { rate: { max: 3, perMs } } } }),
    },
    ['A', 'B', 'C'],
  );
  const starts = effects.filter((e) => e.event === 'start');
  expect(new Set(starts.map((s) => s.task)).size).toBe(21);
  expect(starts).toHaveLength(21);
  const windows = startsPerWindow(effects, perMs);
  expect(Math.max(...windows.values()), JSON.stringify([...windows])).toBeLessThanOrEqual(3);
  // 21 starts needed at least 7 windows; the limit is a limit, not a lock: some window was full.
  expect(windows.size).toBeGreaterThanOrEqual(7);
  expect(Math.max(...windows.values())).toBe(3);
  // More than one runner started tasks under the limit.
  expect(new Set(starts.map((s) => s.runner)).size).toBeGreaterThanOrEqual(2);
}, 300_000);
