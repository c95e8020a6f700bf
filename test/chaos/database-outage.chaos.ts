/**
 * The database server itself fails, on a dedicated FerretDB (its own process
 * and data folder): SIGSTOPped for 10 s (silence longer than the 5 s lease),
 * and SIGKILLed then restarted on the same data after 12 s (longer than
 * mongoose's 10 s command buffering). Two runners share the container and
 * must ride it out: nothing that succeeded may be recorded as a failure, no
 * task may run twice at once (an outage is no reason to take over a healthy
 * lease), and the container must end as its tasks say. If both runners die
 * or hang, a third one finishes the container (reported, not asserted).
 */
import path from 'node:path';
import { afterEach, it } from 'vitest';
import { killChildrenAfterEach, makeTempDir, type TsChild } from '../support/child.js';
import { randomDbName, uriWithDb } from '../support/database.js';
import { startDedicatedFerretDb, type DedicatedFerretDb } from './support/ferretdb.js';
import { killAll, readContainer, report, scenario, settle, sleep, spawnRunner, type Scenario } from './support/scenario.js';

killChildrenAfterEach();
let server: DedicatedFerretDb | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

// Short tasks at concurrency 4 in each of two runners: claims, heartbeats and
// outcome writes are in flight most of the time, so the fault meets some.
const SHAPE = 'flat:120';
const runnerEnv = (uri: string, container: string) => ({
  MONGODB_URI: uri, CONTAINER: container, SHAPE, INC: '1',
  LEASE_MS: '5000', HEARTBEAT_MS: '1250', STEPS: '2', STEP_MS: '60', CONCURRENCY: '4', SAY_END: '1',
});

async function successesOf(runners: TsChild[], n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (runners.flatMap((r) => r.lines).filter((l) => l.startsWith('succeeded ')).length < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} successes within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Resolves as soon as a handler of one of `runners` returns (its outcome write is about to go out). */
function nextHandlerEnd(runners: TsChild[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no handler ended within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer | string) => {
      if (String(chunk).includes('ending ')) done();
    };
    const done = (err?: Error) => {
      clearTimeout(timer);
      for (const r of runners) r.child.stdout?.off('data', onData);
      if (err) reject(err);
      else resolve();
    };
    for (const r of runners) r.child.stdout?.on('data', onData);
  });
}

/**
 * Two runners; once 20 tasks succeeded, `fault` strikes the moment a handler
 * returns, so that its outcome write meets the fault; then both runners must
 * finish (else a third runner does).
 */
async function underFault(s: Scenario, uri: string, container: string, fault: () => Promise<void>): Promise<void> {
  const a = spawnRunner(s, 'A');
  const b = spawnRunner(s, 'B');
  await successesOf([a, b], 20, 60_000);
  await nextHandlerEnd([a, b], 30_000);
  await fault();
  const [aEnd, bEnd] = await Promise.all([settle(s, a, 90_000), settle(s, b, 90_000)]);
  let finisher = 'not needed';
  if (aEnd !== 'done succeeded' && bEnd !== 'done succeeded') finisher = await settle(s, spawnRunner(s, 'finisher'), 90_000);
  report(s, await readContainer(uri, container), {
    shape: SHAPE,
    extra: { A: JSON.stringify(aEnd), B: JSON.stringify(bEnd), finisher: JSON.stringify(finisher) },
  });
}

it('database SIGSTOPped for 10 s while tasks run and finish', async () => {
  const srv = (server = await startDedicatedFerretDb(path.join(makeTempDir('pts-chaos-db-'), 'data')));
  const uri = uriWithDb(srv.uri, randomDbName());
  const s = scenario('db-sigstop-10s', runnerEnv(uri, 'outage-stop'));
  try {
    await underFault(s, uri, 'outage-stop', async () => {
      srv.signal('SIGSTOP');
      await sleep(10_000);
      srv.signal('SIGCONT');
    });
  } finally {
    srv.signal('SIGCONT');
    await killAll(s);
  }
});

it('database SIGKILLed, then restarted on the same data 12 s later', async () => {
  const srv = (server = await startDedicatedFerretDb(path.join(makeTempDir('pts-chaos-db-'), 'data')));
  const uri = uriWithDb(srv.uri, randomDbName());
  const s = scenario('db-sigkill-restart', runnerEnv(uri, 'outage-kill'));
  try {
    await underFault(s, uri, 'outage-kill', async () => {
      await srv.kill();
      await sleep(12_000);
      await srv.restart();
    });
  } finally {
    await killAll(s);
  }
});
