/**
 * Leases that do not trust clocks: takeover is judged by the reader on its
 * own monotonic clock (the same lease seen unchanged for `leaseMs`), so a
 * runner whose wall clock is a minute ahead never takes over a healthy task,
 * and a written expiry far in the past or the future changes nothing.
 */
import { expect, it } from 'vitest';
import { defineContainer, MongoStore, Runner } from '../src/index.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

it('a runner whose wall clock is 60 s ahead does not take over a healthy task', async () => {
  // A 3 s lease: a healthy holder on a busy machine renews well within it.
  const env = { MONGODB_URI: db().uriWithDb, LEASE_MS: '3000', STEPS: '20' };
  const healthy = spawnTsChild('test/fixtures/skew-child.ts', [], { ...env, RUNNER: 'A' });
  await healthy.waitForLine('started long attempt=1', 30_000);
  const ahead = spawnTsChild('test/fixtures/skew-child.ts', [], { ...env, RUNNER: 'B', SKEW_MS: '60000' });
  await ahead.waitForLine('ready', 30_000);
  await healthy.waitForLine('done succeeded', 30_000);
  await ahead.waitForLine('done succeeded', 30_000);

  expect(healthy.lines.filter((l) => l.startsWith('lease-lost'))).toEqual([]);
  expect(ahead.lines.filter((l) => l.startsWith('started long'))).toEqual([]);
  const long = stateOf(await snapshotOf(db().connection, 'skew'), 'long');
  expect(long).toMatchObject({ status: 'succeeded', output: 'from-A', attempt: 1, recoveries: 0 });
  expect(stateOf(await snapshotOf(db().connection, 'skew'), 'after').output).toBe('after from-A');
});

it('runners whose clock option stands still do not take over a healthy task (the clock never decides leases)', async () => {
  // Every time they write (claim expiry, heartbeats) is the same instant, so a
  // lease identified by its written expiry would never seem to move.
  const env = { MONGODB_URI: db().uriWithDb, LEASE_MS: '3000', STEPS: '25', FIXED_CLOCK: String(Date.UTC(2026, 0, 1)) };
  const healthy = spawnTsChild('test/fixtures/skew-child.ts', [], { ...env, RUNNER: 'A', CONTAINER: 'fixed' });
  await healthy.waitForLine('started long attempt=1', 30_000);
  const other = spawnTsChild('test/fixtures/skew-child.ts', [], { ...env, RUNNER: 'B', CONTAINER: 'fixed' });
  await other.waitForLine('ready', 30_000);
  await healthy.waitForLine('done succeeded', 30_000);
  await other.waitForLine('done succeeded', 30_000);

  expect(healthy.lines.filter((l) => l.startsWith('lease-lost'))).toEqual([]);
  expect(other.lines.filter((l) => l.startsWith('started long'))).toEqual([]);
  expect(stateOf(await snapshotOf(db().connection, 'fixed'), 'long')).toMatchObject({ status: 'succeeded', output: 'from-A', attempt: 1, recoveries: 0 });
});

it.each([
  ['an hour in the past', -3_600_000],
  ['an hour in the future', 3_600_000],
])('a dead holder whose written expiry is %s is taken over after one lease of the reader’s own time', async (_, skewMs) => {
  const name = `dead-${skewMs > 0 ? 'future' : 'past'}`;
  const container = () => defineContainer(name).task('a', async () => 'rescued');
  await Runner.create({ connection: db().connection, container: container() });
  // A runner on a machine with a wrong clock claimed the task and died.
  const skewed = await MongoStore.create(db().connection, { clock: { now: () => Date.now() + skewMs } });
  await skewed.claimTask({ container: name, task: 'a', expectedToken: 0, claim: { runnerId: 'dead', attempt: 1, leaseMs: 1000, heartbeatMs: 250, checkpoint: null } });

  const t0 = performance.now();
  const runner = await Runner.create({ connection: db().connection, container: container(), pollMs: 50 });
  let takenOverAfterMs = -1;
  runner.on('task:started', (e) => {
    if (e.recovered) takenOverAfterMs = performance.now() - t0;
  });
  expect((await runner.run()).status).toBe('succeeded');
  expect(takenOverAfterMs).toBeGreaterThanOrEqual(1000);
  expect(takenOverAfterMs).toBeLessThan(5_000);
  expect(stateOf(await snapshotOf(db().connection, name), 'a')).toMatchObject({ output: 'rescued', recoveries: 1 });
});
