import path from 'node:path';
import { expect, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { sleep, snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();

it('a runner frozen past its lease is fenced off: its late writes are rejected', async () => {
  const log = sideEffectLog<{ runner: string; event: string; task?: string; error?: string; attempt?: number }>(
    path.join(makeTempDir(), 'effects.jsonl'),
  );
  const env = { MONGODB_URI: db().uriWithDb, SCENARIO: 'zombie', LOG: log.path, LEASE_MS: '1000' };

  const zombie = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'A' });
  await zombie.waitForLine('slow-started');
  zombie.child.kill('SIGSTOP');
  await sleep(1_500); // well past the 1 s lease: no heartbeat got through

  const rescuer = spawnTsChild('test/fixtures/runner-child.ts', [], { ...env, RUNNER: 'B' });
  await rescuer.waitForLine('started slow attempt=2 recovered=true');
  await rescuer.waitForLine('done succeeded', 30_000);
  const settled = await snapshotOf(db().connection, 'zombie');

  zombie.child.kill('SIGCONT');
  await zombie.waitForLine('lease-lost slow', 20_000);
  await zombie.waitForLine('done succeeded', 20_000);

  const entries = log.read();
  // The zombie's handler ran to its end and tried to write, and was refused.
  expect(entries.filter((e) => e.runner === 'A' && e.event === 'checkpoint-rejected')).toEqual([
    expect.objectContaining({ attempt: 1, error: 'LeaseLostError' }),
  ]);
  expect(entries.filter((e) => e.runner === 'A' && e.event === 'succeeded')).toEqual([]);
  expect(entries.filter((e) => e.runner === 'B' && e.event === 'checkpoint-accepted')).toHaveLength(1);

  // Nothing the zombie did after waking changed the persisted state.
  const end = await snapshotOf(db().connection, 'zombie');
  const slow = stateOf(end, 'slow');
  expect(slow.output).toBe('from-B');
  expect(slow.attempt).toBe(2);
  expect(slow.runnerId).toBe('B');
  expect(slow.checkpoint).toEqual({ writtenBy: 'B' });
  expect(slow.token).toBe(stateOf(settled, 'slow').token);
  expect(stateOf(end, 'after').output).toBe('after from-B');
});
