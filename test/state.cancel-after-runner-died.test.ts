/**
 * Issue 12 §E: a container cancelled after its runner died. The task that
 * was running must not read `running` for ever: once its lease expires
 * (judged on the server's clock), a status read shows it cancelled, and the
 * cancel repeated writes it so.
 */
import { expect, it } from 'vitest';
import { cancelContainer, getContainerStatus, MongoStore } from '../src/index.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { sleep, stateOf } from './support/engine.js';

const db = databasePerFile();
killChildrenAfterEach();
const LEASE_MS = 3_000;

it('the task that was running reads cancelled once its lease expires, and a repeated cancel records it', async () => {
  const child = spawnTsChild('test/fixtures/state-child.ts', [], {
    MONGODB_URI: db().uriWithDb,
    CONTAINER: 'cancel-orphan',
    SCENARIO: 'hold',
    LEASE_MS: String(LEASE_MS),
  });
  await child.waitForLine('started long', 30_000);
  await child.kill('SIGKILL');
  const store = await MongoStore.create(db().connection);
  expect(await cancelContainer(store, 'cancel-orphan')).toBe(true);
  const long = async () => (await getContainerStatus('cancel-orphan', { store })).tasks.find((t) => t.name === 'long')!;
  // Its lease may still be running: nobody can tell yet that its runner is gone.
  expect(['running', 'cancelled']).toContain((await long()).status);

  let shown = await long();
  for (const until = Date.now() + LEASE_MS + 30_000; shown.status === 'running' && Date.now() < until; ) {
    await sleep(200);
    shown = await long();
  }
  expect(shown.status).toBe('cancelled');
  expect(shown.reason).toBe('container cancelled');
  const report = await getContainerStatus('cancel-orphan', { store });
  expect(report.status).toBe('cancelled');
  expect(report.counts.running).toBe(0);

  // Repeating the command writes what the status read showed.
  expect(await cancelContainer(store, 'cancel-orphan')).toBe(false);
  const stored = stateOf((await store.loadSnapshot('cancel-orphan'))!, 'long');
  expect(stored.status).toBe('cancelled');
}, 90_000);
