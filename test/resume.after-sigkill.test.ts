import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DefinitionConflictError, defineContainer, Runner } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

type Entry = { runner: string; event: string; task?: string; attempt?: number; offset?: number; output?: unknown };

const db = databasePerFile();
killChildrenAfterEach();

describe('crash resume after SIGKILL', () => {
  it('resumes in a new process: finished tasks never run again, the download continues from its checkpoint, outputs survive', async () => {
    const log = sideEffectLog<Entry>(path.join(makeTempDir(), 'effects.jsonl'));
    const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'crash', LOG: log.path, LEASE_MS: '1000' };

    const first = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'A' });
    const prepared = await first.waitForLine(/^succeeded prepare /);
    await first.waitForLine('chunk 8');
    const exit = await first.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');

    // What the dead process left behind.
    const mid = await snapshotOf(db().connection, 'crash');
    expect(stateOf(mid, 'prepare').status).toBe('succeeded');
    expect(stateOf(mid, 'download').status).toBe('running');
    const savedOffset = (stateOf(mid, 'download').checkpoint as { offset: number }).offset;
    expect(savedOffset).toBeGreaterThanOrEqual(7);
    const doneBeforeKill = mid.tasks.filter((t) => t.state.status === 'succeeded').map((t) => t.record.name);

    const second = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'B' });
    await second.waitForLine('started download attempt=2 recovered=true');
    await second.waitForLine('done succeeded', 30_000);
    await second.waitForExit();

    const entries = log.read();
    const starts = (task: string) => entries.filter((e) => e.event === 'start' && e.task === task);
    for (const task of doneBeforeKill) {
      expect(starts(task), `${task} ran again`).toHaveLength(1);
      expect(starts(task)[0]!.runner).toBe('A');
    }
    for (const task of ['prepare', 'side', 'download', 'verify', 'import']) {
      expect(entries.filter((e) => e.event === 'finish' && e.task === task), task).toHaveLength(1);
    }
    // The second attempt continued from the saved byte offset, not from 0.
    expect(entries.filter((e) => e.event === 'resume-from').map((e) => [e.runner, e.offset])).toEqual([
      ['A', 0],
      ['B', savedOffset],
    ]);
    const chunksB = entries.filter((e) => e.event === 'chunk' && e.runner === 'B').map((e) => e.offset);
    expect(chunksB[0]).toBe(savedOffset + 1);
    expect(chunksB.at(-1)).toBe(20);

    // Outputs of tasks finished by the dead process reach dependents in the new one.
    const end = await snapshotOf(db().connection, 'crash');
    expect(end.container.status).toBe('succeeded');
    const prepareOutput = JSON.parse(prepared.replace(/^succeeded prepare /, ''));
    const imported = stateOf(end, 'import').output as { prepare: unknown; verified: number };
    expect(JSON.parse(JSON.stringify(imported.prepare))).toEqual(prepareOutput);
    expect((imported.prepare as { at: unknown }).at).toBeInstanceOf(Date);
    expect(imported.verified).toBe(20);
  }, 240_000);

  it('survives repeated SIGKILLs at arbitrary moments: no task starts again once its success was recorded', async () => {
    const log = sideEffectLog<Entry>(path.join(makeTempDir(), 'effects.jsonl'));
    // Time budgets are generous: on a busy machine each process takes seconds to start.
    const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'crash', LOG: log.path, LEASE_MS: '1500', CONTAINER_SUFFIX: '-chaos' };
    // Kill points spread over the run: while claiming, mid-download, near the end.
    for (const [i, delayMs] of [150, 700, 450, 900].entries()) {
      const victim = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: `victim-${i}` });
      await victim.waitForLine('ready', 60_000);
      await new Promise((r) => setTimeout(r, delayMs));
      await victim.kill('SIGKILL');
    }
    const survivor = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'survivor' });
    await survivor.waitForLine('done succeeded', 180_000);

    const entries = log.read();
    const end = await snapshotOf(db().connection, 'crash-chaos');
    for (const task of ['prepare', 'side', 'download', 'verify', 'import']) {
      // The attempt whose success the database recorded. Judged from the
      // store, not from the process's 'succeeded' line: a SIGKILL between the
      // outcome's write and that line leaves a recorded success with no line.
      const state = stateOf(end, task);
      expect(state.status, task).toBe('succeeded');
      const starts = entries.filter((e) => e.event === 'start' && e.task === task).map((e) => e.attempt!);
      expect(starts, `${task}: the attempt that succeeded ran its handler`).toContain(state.attempt);
      // Attempts are numbered by their claims: a start after the recorded success would carry a higher number.
      expect(starts.filter((n) => n > state.attempt), `${task} ran again after its success was recorded`).toEqual([]);
      expect(entries.filter((e) => e.event === 'succeeded' && e.task === task).length, task).toBeLessThanOrEqual(1);
    }
    // Each download attempt started at or after where the previous one started: checkpoints only move forward.
    const offsets = entries.filter((e) => e.event === 'resume-from').map((e) => e.offset ?? 0);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(end.container.status).toBe('succeeded');
    expect((stateOf(end, 'import').output as { verified: number }).verified).toBe(20);
  }, 480_000);

  it('refuses to resume a run whose definition changed, naming the difference', async () => {
    const noop = async () => null;
    const v1 = defineContainer('versioned').task('a', noop).task('b', { dependsOn: ['a'] }, noop);
    await (await Runner.create({ connection: db().connection, container: v1, pollMs: 50 })).run();

    const v2 = defineContainer('versioned').task('a', noop).task('c', noop).task('b', { dependsOn: ['a', 'c'] }, noop);
    const error = await Runner.create({ connection: db().connection, container: v2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DefinitionConflictError);
    expect((error as DefinitionConflictError).differences).toEqual([
      'task "b" depended on [a] but now depends on [a, c]',
      'task "c" is declared but not in the persisted run',
    ]);
    expect((error as Error).message).toContain('versioned');
  });
});
