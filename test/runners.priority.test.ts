/**
 * Task priorities: every runner claims ready tasks of a higher priority
 * before those of a lower one (declaration order within one priority),
 * for declared tasks and for tasks added at run time, and across runner
 * processes sharing a container.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineContainer, InvalidOptionError, Runner } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

describe('task priorities', () => {
  it('one runner starts ready tasks by priority, then declaration order, tasks added at run time included', async () => {
    const started: string[] = [];
    const work = (name: string) => async () => void started.push(name);
    const c = defineContainer('priorities')
      .task('first', { priority: 100 }, async (ctx) => {
        started.push('first');
        // Ready once `first` succeeded: it jumps ahead of every declared task left.
        await ctx.addTasks([{ name: 'added', handler: 'addedWork', priority: 20 }]);
      })
      .task('a', work('a'))
      .task('b', { priority: 5 }, work('b'))
      .task('c', { priority: -1 }, work('c'))
      .task('d', { priority: 5 }, work('d'))
      .task('e', { priority: 10 }, work('e'))
      .task('f', { priority: 0.5, dependsOn: ['c'] }, work('f'));
    const runner = await Runner.create({ connection: db().connection, container: c, handlers: { addedWork: work('added') }, concurrency: 1, pollMs: 50 });
    expect((await runner.run()).status).toBe('succeeded');
    // `f` waits for `c`, the last by priority.
    expect(started).toEqual(['first', 'added', 'e', 'b', 'd', 'a', 'c', 'f']);
  });

  it('a priority must be a finite number', async () => {
    for (const priority of [Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
      expect(() => defineContainer('bad-priority').task('a', { priority }, async () => 1).build()).toThrow(InvalidOptionError);
    }
    const added = defineContainer('bad-added-priority').task('a', { retries: 0 }, async (ctx) => {
      await ctx.addTasks([{ name: 'x', handler: 'a', priority: Number.NaN }]);
    });
    const runner = await Runner.create({ connection: db().connection, container: added, pollMs: 50 });
    const refused: unknown[] = [];
    runner.on('task:failed', (e) => refused.push(e.error));
    await runner.run();
    expect(JSON.stringify(refused)).toContain('priority (task \\"x\\")');
  });
});

it('three runner processes of concurrency 1 claim every high-priority task before any low one', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<{ runner: string; event: string; task: string }>(path.join(dir, 'effects.jsonl'));
  const goFile = path.join(dir, 'go');
  // Every third task has priority 10 (t0002, t0005, ...): spread over the declaration order.
  const env = {
    MONGODB_URI: db().uriWithDb, LOG: log.path, GO_FILE: goFile, CONTAINER: 'priority-runners', TASKS: '24', TASK_MS: '100',
    PRIORITY_EVERY: '3', OPTIONS: JSON.stringify({ concurrency: 1, pollMs: 100 }),
  };
  const runners = ['A', 'B', 'C'].map((r) => spawnTsChild('test/fixtures/shared-runner-child.ts', [], { ...env, RUNNER: r }));
  await Promise.all(runners.map((r) => r.waitForLine('ready', 60_000)));
  fs.writeFileSync(goFile, 'go');
  await Promise.all(runners.map((r) => r.waitForLine('done succeeded', 180_000)));

  const high = (task: string) => Number(task.slice(1)) % 3 === 2;
  const claims = await db()
    .connection.collection('pts_transitions')
    .find({ container: 'priority-runners', kind: 'claimed' })
    .toArray();
  expect(claims).toHaveLength(24);
  // A runner claims a low task only once its picture shows no high one left
  // pending: after it read each high task's claim, stamped before it (one machine, one clock).
  const lastHigh = Math.max(...claims.filter((c) => high(c.task as string)).map((c) => (c.at as Date).getTime()));
  const firstLow = Math.min(...claims.filter((c) => !high(c.task as string)).map((c) => (c.at as Date).getTime()));
  expect(lastHigh, JSON.stringify(claims.map((c) => [c.task, c.runnerId, (c.at as Date).getTime()]))).toBeLessThanOrEqual(firstLow);
  // Runners shared the work (the order did not come from one runner doing everything).
  const starts = log.read().filter((e) => e.event === 'start');
  expect(new Set(starts.map((s) => s.runner)).size).toBeGreaterThanOrEqual(2);
}, 300_000);
