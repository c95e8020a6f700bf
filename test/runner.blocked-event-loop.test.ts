/**
 * Handlers that block the event loop. A handler computing synchronously
 * sends no heartbeat and lets no timer fire, so its lease lapses unseen:
 * - the attempt checks its lease synchronously at every `ctx.*` call (also
 *   reading `ctx.signal`) and when the loop turns again, so it stops before
 *   acting as the holder once its lease could have been taken over;
 * - a release after such a self-fencing counts, and the task fails with
 *   `LeaseLapseLimitError` instead of looping claim → release → claim.
 * Real runner processes, real test server; side effects logged outside the engine.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

type Effect = { runner: string; event: string; atMs: number; task?: string; attempt?: number; i?: number; aborted?: boolean; code?: string; delayMs?: number };

it('8 s of synchronous work, a 3 s lease and two runners: no attempt works on past its lease, nothing is written outside, the task fails with a typed error', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<Effect>(path.join(dir, 'effects.jsonl'));
  const go = path.join(dir, 'go');
  const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'block', CONTAINER: 'block-two', LOG: log.path, LEASE_MS: '3000', BLOCK_MS: '8000', GO_FILE: go };
  const a = spawnTsChild('test/fixtures/loop-child.ts', [], { ...env, RUNNER: 'A' });
  const b = spawnTsChild('test/fixtures/loop-child.ts', [], { ...env, RUNNER: 'B' });
  await a.waitForLine(/^ready/, 60_000);
  await b.waitForLine(/^ready/, 60_000);
  fs.writeFileSync(go, '');
  await a.waitForLine(/^done /, 180_000);
  await b.waitForLine(/^done /, 180_000);

  const effects = log.read();
  const chunks = effects.filter((e) => e.event === 'chunk');
  expect(chunks.length).toBeGreaterThan(0);
  // Chunk i ends i seconds into an attempt; from the third on, its 3 s lease (less the fence's margin) is over.
  expect(chunks.filter((c) => (c.i ?? 0) >= 3 && !c.aborted)).toEqual([]);
  expect(chunks.filter((c) => (c.i ?? 0) > 3)).toEqual([]);
  expect(effects.filter((e) => e.event === 'external-write')).toEqual([]);
  expect(effects.filter((e) => e.event === 'loop-blocked').length).toBeGreaterThan(0);

  const compute = stateOf(await snapshotOf(db().connection, 'block-two'), 'compute');
  expect(compute.status).toBe('failed');
  expect(['PTS_LEASE_LAPSE_LIMIT', 'PTS_RECOVERY_LIMIT']).toContain(compute.lastError?.code);
  expect(compute.attempt).toBeLessThanOrEqual(8);
}, 240_000);

it('4 s of synchronous work alone with a 3 s lease fails with LeaseLapseLimitError instead of looping claim → release → claim', async () => {
  const log = sideEffectLog<Effect>(path.join(makeTempDir(), 'effects.jsonl'));
  const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'block', CONTAINER: 'block-alone', LOG: log.path, LEASE_MS: '3000', BLOCK_MS: '4000' };
  const a = spawnTsChild('test/fixtures/loop-child.ts', [], { ...env, RUNNER: 'A', MAX_RECOVERIES: '3' });
  await a.waitForLine('done failed', 180_000);

  const effects = log.read();
  expect(effects.filter((e) => e.event === 'start')).toHaveLength(3);
  expect(effects.filter((e) => e.event === 'released')).toHaveLength(3);
  expect(effects.filter((e) => e.event === 'external-write')).toEqual([]);
  expect(effects.filter((e) => e.event === 'failed')).toEqual([expect.objectContaining({ code: 'PTS_LEASE_LAPSE_LIMIT' })]);
  const compute = stateOf(await snapshotOf(db().connection, 'block-alone'), 'compute');
  expect(compute).toMatchObject({ status: 'failed', lapses: 3, attempt: 4 });
  expect(compute.lastError?.message).toMatch(/lost its lease 3 times.*runInWorker/);
}, 240_000);

it('the same 8 s of work run with runInWorker keeps its lease with two runners: one attempt, one external write, success', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<Effect>(path.join(dir, 'effects.jsonl'));
  const go = path.join(dir, 'go');
  const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'block-in-worker', CONTAINER: 'block-worker', LOG: log.path, LEASE_MS: '3000', BLOCK_MS: '8000', GO_FILE: go };
  const a = spawnTsChild('test/fixtures/loop-child.ts', [], { ...env, RUNNER: 'A' });
  const b = spawnTsChild('test/fixtures/loop-child.ts', [], { ...env, RUNNER: 'B' });
  await a.waitForLine(/^ready/, 60_000);
  await b.waitForLine(/^ready/, 60_000);
  fs.writeFileSync(go, '');
  await a.waitForLine('done succeeded', 180_000);
  await b.waitForLine('done succeeded', 180_000);
  // The worker pool does not keep a runner's process alive.
  expect((await a.waitForExit()).code).toBe(0);
  expect((await b.waitForExit()).code).toBe(0);

  const effects = log.read();
  expect(effects.filter((e) => e.event === 'start')).toHaveLength(1);
  expect(effects.filter((e) => e.event === 'chunk')).toHaveLength(8);
  expect(effects.filter((e) => e.event === 'external-write')).toHaveLength(1);
  expect(effects.filter((e) => e.event === 'lease-lost' || e.event === 'released' || e.event === 'loop-blocked')).toEqual([]);
  const compute = stateOf(await snapshotOf(db().connection, 'block-worker'), 'compute');
  expect(compute).toMatchObject({ status: 'succeeded', attempt: 1, recoveries: 0, lapses: 0, progress: 1 });
  expect((compute.output as { chunks: number }).chunks).toBe(8);
}, 240_000);
