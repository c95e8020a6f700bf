/**
 * Runner processes on one container share its work: a runner whose claims
 * were taken by another moves on to other tasks at once (not at its next
 * poll), and runners that know of each other sweep different parts of the
 * ready set instead of racing for the same tasks, in equal shares.
 */
import fs from 'node:fs';
import path from 'node:path';
import mongoose from 'mongoose';
import { expect, it } from 'vitest';
import { Roster } from '../src/engine/roster.js';
import { MongoStore } from '../src/store/mongo/mongo-store.js';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

it('two runners with a long pollMs both run a share of the tasks, each task once', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<{ runner: string; event: string; task: string }>(path.join(dir, 'effects.jsonl'));
  const goFile = path.join(dir, 'go');
  // A runner that slept until its next poll after a lost claim would run
  // nothing for 15 s: by then the other one has run every task.
  const env = {
    MONGODB_URI: db().uriWithDb, LOG: log.path, GO_FILE: goFile, TASKS: '48', TASK_MS: '150',
    OPTIONS: JSON.stringify({ concurrency: 4, pollMs: 15_000 }),
  };
  const runners = ['A', 'B'].map((r) => spawnTsChild('test/fixtures/shared-runner-child.ts', [], { ...env, RUNNER: r }));
  await Promise.all(runners.map((r) => r.waitForLine('ready', 60_000)));
  fs.writeFileSync(goFile, 'go');
  await Promise.all(runners.map((r) => r.waitForLine(/^done /, 120_000)));

  const starts = log.read().filter((e) => e.event === 'start');
  expect(new Set(starts.map((s) => s.task)).size).toBe(48);
  expect(starts).toHaveLength(48);
  const perRunner = (r: string) => starts.filter((s) => s.runner === r).length;
  // Both take part (before spreading: 48 and 0). An eighth each, not a quarter: on a
  // busy machine one process may get the CPU for most of the run (seen: 10 and 38).
  expect(perRunner('A'), `A ran ${perRunner('A')}, B ran ${perRunner('B')}`).toBeGreaterThanOrEqual(6);
  expect(perRunner('B'), `A ran ${perRunner('A')}, B ran ${perRunner('B')}`).toBeGreaterThanOrEqual(6);
}, 240_000);

it('four runners sweep apart: few of their claims find the position taken, and each task runs once', async () => {
  const tasks = 160;
  const { lost } = await runTogether(['A', 'B', 'C', 'D'], { TASKS: String(tasks), TASK_MS: '50', CONTAINER: 'sweeps', OPTIONS: JSON.stringify({ concurrency: 4 }) });
  // Racing over the head of the ready set (each picking at random among the
  // first 4 x runners x free slots), runners lost about one claim per task they ran.
  // Sweeping apart, they lose claims where sweeps meet, and at the end, when
  // what each sees left was run by others.
  const total = lost.reduce((a, b) => a + b, 0);
  expect(total, `claims lost per runner: ${lost.join("/")}`).toBeLessThanOrEqual(tasks / 2);
}, 240_000);

it('four runners started together claim apart from their first step: each starts in its own eighth of the tasks', async () => {
  const tasks = 64;
  const concurrency = 2;
  const names = ['A', 'B', 'C', 'D'];
  // An eighth is 8 tasks, 4 rounds of 2 s for one runner sweeping: a runner would have
  // to start 8 s late for another to sweep into its eighth before it claims there.
  const { lost, starts } = await runTogether(names, { TASKS: String(tasks), TASK_MS: '2000', CONTAINER: 'apart', OPTIONS: JSON.stringify({ concurrency }) });
  // Racing from the head of the ready set (each knowing of the others only
  // from the claims it lost to them), all four started among the first
  // 4 x runners x free slots tasks, at random. Announced on the roster before
  // their run, each starts at its own share: the k-th of n live places at
  // k/n of the ready run (quarters here; see the test of places with holes
  // below). Judged by distinct eighths, as when offsets went by place number
  // (0, 1/2, 1/4, 3/4, 1/8…) and places need not be 0-3.
  const eighthOf = (task: string) => Math.floor(Number(task.slice(1)) / (tasks / 8));
  const firstEighths = names.map((r) => eighthOf(starts.find((s) => s.runner === r)!.task));
  expect(new Set(firstEighths).size, `first eighths ${firstEighths.join('/')}`).toBe(4);
  // Claims are lost where shares meet and at the end, not one per task (seen: 6 to 15 of 64; 31 before the roster).
  const total = lost.reduce((a, b) => a + b, 0);
  expect(total, `claims lost per runner: ${lost.join('/')}`).toBeLessThanOrEqual(tasks / 2);
}, 240_000);

it('four runners whose roster places have holes (0, 2, 4, 5) still split the tasks into equal shares: each starts in its own quarter', async () => {
  const tasks = 64;
  const container = 'holes';
  // The runners join one after another. Once A has created the container
  // and taken place 0, rosters of this process (on their own connection)
  // take 1, 2 and 3, and give 2 back: B takes 2, C 4 and D 5. Places 1 and 3
  // are given back before the run, as by runners that left.
  const conn = await mongoose.createConnection(db().uriWithDb).asPromise();
  try {
    const store = await MongoStore.create(conn);
    const holders = ['H1', 'H2', 'H3'].map((runnerId) => new Roster(store, container, { runnerId, leaseMs: 120_000, pollMs: 1000, clock: { now: () => Date.now() } }));
    const names = ['A', 'B', 'C', 'D'];
    const { lost, starts } = await runTogether(names, { TASKS: String(tasks), TASK_MS: '2000', CONTAINER: container, OPTIONS: JSON.stringify({ concurrency: 2 }) }, {
      joinOneByOne: true,
      afterReady: async (name) => {
        if (name !== 'A') return;
        for (const h of holders) await h.refresh();
        expect(holders.map((h) => h.place)).toEqual([1, 2, 3]);
        await holders[1]!.leave();
      },
      beforeGo: async () => {
        // Every place was distinct and in the order joined: 0, 2, 4, 5 for A to D.
        await holders[0]!.reread();
        expect(holders[0]!.places).toEqual([0, 1, 2, 3, 4, 5]);
        await holders[0]!.leave();
        await holders[2]!.leave();
      },
    });
    // By place number (offsets 0, 1/4, 1/8 and 5/8), A and C started in the
    // first quarter and one runner's share was 3 times another's. By rank
    // among the live places: 0, 1/4, 1/2, 3/4. A quarter is 16 tasks, 8 rounds
    // of 2 s: a runner would have to start 16 s late to be swept into.
    const quarterOf = (task: string) => Math.floor(Number(task.slice(1)) / (tasks / 4));
    const firstQuarters = names.map((r) => quarterOf(starts.find((s) => s.runner === r)!.task));
    expect(firstQuarters, `first quarters ${firstQuarters.join('/')}`).toEqual([0, 1, 2, 3]);
    const total = lost.reduce((a, b) => a + b, 0);
    expect(total, `claims lost per runner: ${lost.join('/')}`).toBeLessThanOrEqual(tasks / 2);
  } finally {
    await conn.close();
  }
}, 240_000);

/**
 * Starts one runner process per name on a shared container (`env`: the
 * fixture's TASKS, TASK_MS, CONTAINER, OPTIONS), lets them run it from one
 * `go`, and checks that every task started exactly once; returns the claims
 * each lost and every start.
 */
async function runTogether(
  names: string[],
  env: Record<string, string>,
  how: { joinOneByOne?: boolean; afterReady?: (name: string) => Promise<void>; beforeGo?: () => Promise<void> } = {},
): Promise<{ lost: number[]; starts: Array<{ runner: string; task: string }> }> {
  const dir = makeTempDir();
  const log = sideEffectLog<{ runner: string; event: string; task: string }>(path.join(dir, 'effects.jsonl'));
  const goFile = path.join(dir, 'go');
  const all = { ...env, MONGODB_URI: db().uriWithDb, LOG: log.path, GO_FILE: goFile };
  const spawn = (r: string) => spawnTsChild('test/fixtures/shared-runner-child.ts', [], { ...all, RUNNER: r });
  const runners: Array<ReturnType<typeof spawn>> = [];
  for (const r of names) {
    runners.push(spawn(r));
    // One by one: each has joined the roster (Runner.create) before the next starts.
    if (how.joinOneByOne) {
      await runners[runners.length - 1]!.waitForLine('ready', 60_000);
      await how.afterReady?.(r);
    }
  }
  if (!how.joinOneByOne) await Promise.all(runners.map((r) => r.waitForLine('ready', 60_000)));
  await how.beforeGo?.();
  fs.writeFileSync(goFile, 'go');
  const lost = await Promise.all(runners.map(async (r) => Number((await r.waitForLine(/^lost \d+$/, 120_000)).split(' ')[1])));
  await Promise.all(runners.map((r) => r.waitForLine(/^done /, 60_000)));
  const starts = log.read().filter((e) => e.event === 'start');
  const tasks = Number(env.TASKS);
  expect(new Set(starts.map((s) => s.task)).size).toBe(tasks);
  expect(starts).toHaveLength(tasks);
  return { lost, starts };
}
