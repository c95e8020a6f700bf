/**
 * The database server itself fails, on a dedicated FerretDB (its own process
 * and data folder): SIGSTOPped for 10 s (silence longer than the lease), and
 * SIGKILLed then restarted on the same data. The runner must ride it out:
 * nothing that succeeded may be recorded as a failure, no task may run twice
 * at once, and the container must end as its tasks say. If the runner dies or
 * hangs, a second runner finishes the container (reported, not asserted).
 */
import path from 'node:path';
import { afterEach, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir } from '../support/child.js';
import { randomDbName, uriWithDb } from '../support/database.js';
import { startDedicatedFerretDb, type DedicatedFerretDb } from './support/ferretdb.js';
import { killAll, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

killChildrenAfterEach();
let server: DedicatedFerretDb | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

const SHAPE = 'flat:40';
const runnerEnv = (uri: string, container: string) => ({
  MONGODB_URI: uri, CONTAINER: container, SHAPE, INC: '1',
  LEASE_MS: '5000', HEARTBEAT_MS: '1250', STEPS: '5', STEP_MS: '100', CONCURRENCY: '4',
});

async function successes(lines: readonly string[], n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (lines.filter((l) => l.startsWith('succeeded ')).length < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} successes within ${timeoutMs} ms`);
    await sleep(50);
  }
}

it('database SIGSTOPped for 10 s while tasks run and finish', async () => {
  server = await startDedicatedFerretDb(path.join(makeTempDir('pts-chaos-db-'), 'data'));
  const uri = uriWithDb(server.uri, randomDbName());
  const s = scenario('db-sigstop-10s', runnerEnv(uri, 'outage-stop'));
  try {
    const a = spawnRunner(s, 'A');
    await successes(a.lines, 8, 60_000);
    server.signal('SIGSTOP');
    await sleep(10_000);
    server.signal('SIGCONT');
    const aEnd = await settle(s, a, 90_000);
    let finisher = 'not needed';
    if (aEnd !== 'done succeeded') finisher = await settle(s, spawnRunner(s, 'finisher'), 90_000);
    report(s, await readContainer(uri, 'outage-stop'), { shape: SHAPE, extra: { A: JSON.stringify(aEnd), finisher: JSON.stringify(finisher) } });
  } finally {
    server.signal('SIGCONT');
    await killAll(s);
  }
});

it('database SIGKILLed, then restarted on the same data', async () => {
  server = await startDedicatedFerretDb(path.join(makeTempDir('pts-chaos-db-'), 'data'));
  const uri = uriWithDb(server.uri, randomDbName());
  const s = scenario('db-sigkill-restart', runnerEnv(uri, 'outage-kill'));
  try {
    const a = spawnRunner(s, 'A');
    await successes(a.lines, 8, 60_000);
    await server.kill();
    await sleep(2_000);
    await server.restart();
    const aEnd = await settle(s, a, 90_000);
    let finisher = 'not needed';
    if (aEnd !== 'done succeeded') finisher = await settle(s, spawnRunner(s, 'finisher'), 90_000);
    report(s, await readContainer(uri, 'outage-kill'), { shape: SHAPE, extra: { A: JSON.stringify(aEnd), finisher: JSON.stringify(finisher) } });
  } finally {
    await killAll(s);
  }
});
