/**
 * Delete and re-create: while runner A (incarnation 1) is mid-attempt, the
 * container is deleted and runner B creates it again under the same name
 * (incarnation 2). Nothing of the old run may show up in the new one: no
 * old output delivered to a new task or stored as a new task's output, no
 * new task run by the old runner, and the new container ends as its tasks say.
 */
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';
import { MongoStore } from '../../src/index.js';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();

it('delete and re-create a container while a runner of the old one is mid-attempt', async () => {
  const shape = 'slow:4';
  const s = scenario('delete-recreate', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'recreate', SHAPE: shape,
    // Lease, heartbeat and poll at the engine's defaults (30 s, 10 s, 1 s).
    LEASE_MS: '30000', HEARTBEAT_MS: '10000', POLL_MS: '1000', SLOW_STEPS: '30', STEP_MS: '100', STEPS: '2',
  });
  try {
    // The new runner is connected and waits to create the container, as an
    // operator's script that deletes and re-creates at once would.
    const createGo = path.join(s.dir, 'create');
    const b = spawnRunner(s, 'new', { INC: '2', CREATE_GO_FILE: createGo });
    const a = spawnRunner(s, 'old', { INC: '1' });
    await b.waitForLine('connected', 30_000);
    await a.waitForLine(/^started slow /, 30_000);
    await sleep(500);
    const store = await MongoStore.create(db().connection);
    const deleted = await store.deleteContainer('recreate');
    fs.writeFileSync(createGo, '');
    const [aEnd, bEnd] = await Promise.all([settle(s, a, 60_000), settle(s, b, 60_000)]);
    report(s, await readContainer(db().uriWithDb, 'recreate'), {
      shape,
      inc: '2',
      extra: { deleted: String(deleted), old: JSON.stringify(aEnd), new: JSON.stringify(bEnd) },
    });
  } finally {
    await killAll(s);
  }
});
