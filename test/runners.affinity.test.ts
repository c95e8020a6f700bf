import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

interface Effect {
  runner: string;
  event: string;
  task: string;
  attempt?: number;
  local?: boolean;
  key?: string;
  from?: string;
  waitedMs?: number;
}

/** Every step's start, grouped by the file (affinity key) it belongs to, in log order. */
function startsByFile(effects: Effect[]): Map<string, Effect[]> {
  const byFile = new Map<string, Effect[]>();
  for (const e of effects.filter((x) => x.event === 'start' && x.task !== 'plan')) {
    const file = e.task.split('-')[1]!;
    byFile.set(file, [...(byFile.get(file) ?? []), e]);
  }
  return byFile;
}

function setup(files: number, suffix: string) {
  const dir = makeTempDir();
  const localDir = path.join(dir, 'local');
  fs.mkdirSync(localDir);
  const log = sideEffectLog<Effect>(path.join(dir, 'effects.jsonl'));
  const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'affinity', LOG: log.path, LEASE_MS: '3000', LOCAL_DIR: localDir, FILES: String(files), CPU_LIMIT: '1', CONTAINER_SUFFIX: suffix };
  return { dir, log, env };
}

it('two runner processes: each file\'s steps run on the runner that fetched it, and find its local state there', async () => {
  const { dir, log, env } = setup(8, '-spread');
  const goFile = path.join(dir, 'go');
  const runners = ['A', 'B'].map((r) => spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: r, GO_FILE: goFile }));
  await Promise.all(runners.map((r) => r.waitForLine('ready')));
  fs.writeFileSync(goFile, 'go');
  await Promise.all(runners.map((r) => r.waitForLine('done succeeded', 90_000)));

  const byFile = startsByFile(log.read());
  expect(byFile.size).toBe(8);
  for (const [file, starts] of byFile) {
    expect(starts.map((s) => s.task.split('-')[0]), `file ${file}`).toEqual(['fetch', 'work', 'finish']);
    expect(new Set(starts.map((s) => s.runner)).size, `file ${file} ran on ${starts.map((s) => s.runner).join(', ')}`).toBe(1);
    expect(starts.slice(1).every((s) => s.local === true), `file ${file} found its local state`).toBe(true);
  }
  // Both processes really held files.
  const fetchers = new Set([...byFile.values()].map((s) => s[0]!.runner));
  expect(fetchers).toEqual(new Set(['A', 'B']));
  expect(log.read().filter((e) => e.event === 'takeover')).toEqual([]);
}, 150_000);

it('a frozen holder: the other runner waits while it is alive, takes its files over (lease, then affinity) and redoes their local state; the holder, thawed, never gets them back', async () => {
  const { log, env } = setup(6, '-frozen');
  // A alone first: it fetches every file, then works on one at a time (cpu: 1), the first for 2 minutes.
  const a = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'A', HOLD_MS: '120000', CONCURRENCY: '6' });
  await a.waitForLine('ready');
  await a.waitForLine('working work-', 60_000);
  const fetched = () => a.lines.filter((l) => l.startsWith('succeeded fetch-')).length;
  while (fetched() < 6) await new Promise((r) => setTimeout(r, 100));

  const b = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'B' });
  await b.waitForLine('ready');
  await new Promise((r) => setTimeout(r, 4000)); // over leaseMs and affinityWaitMs (3 s): A is alive, B must leave its files alone
  expect(log.read().filter((e) => e.runner === 'B' && e.event === 'start')).toEqual([]);

  a.child.kill('SIGSTOP');
  await b.waitForLine('takeover ', 60_000);
  a.child.kill('SIGCONT');
  await b.waitForLine('done succeeded', 90_000);
  await a.waitForLine('done succeeded', 90_000);

  const effects = log.read();
  const byFile = startsByFile(effects);
  let movedFiles = 0;
  for (const [file, starts] of byFile) {
    const runners = starts.map((s) => s.runner).join('');
    expect(runners, `file ${file}: once B has it, A never gets it back`).toMatch(/^A*B*$/);
    const firstB = starts.findIndex((s) => s.runner === 'B');
    if (firstB < 0) continue;
    movedFiles += 1;
    expect(firstB, `file ${file}: A fetched it`).toBeGreaterThan(0);
    expect(starts[firstB]!.local, `file ${file}: B had none of A's local state and redid it`).toBe(false);
    expect(starts.slice(firstB + 1).every((s) => s.local === true), `file ${file}: B's later steps found it`).toBe(true);
  }
  expect(movedFiles).toBeGreaterThanOrEqual(2);
  const takeovers = effects.filter((e) => e.event === 'takeover');
  expect(takeovers.length).toBeGreaterThanOrEqual(1);
  for (const t of takeovers) {
    expect(t).toMatchObject({ runner: 'B', from: 'A' });
    expect(t.waitedMs).toBeGreaterThanOrEqual(3000);
  }
  const snapshot = await snapshotOf(db().connection, 'affinity-frozen');
  expect(snapshot.tasks).toHaveLength(1 + 6 * 3);
  expect(snapshot.tasks.every((t) => t.state.status === 'succeeded')).toBe(true);
}, 240_000);
