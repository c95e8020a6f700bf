/**
 * Status judges a runner's liveness on one clock, the database server's,
 * never by comparing the holder's wall clock with the reader's: runners whose
 * clocks are a minute ahead and a minute behind are reported alive by
 * `getContainerStatus` and `pts status` read from this process, and once
 * SIGSTOPped they are reported lost after two missed heartbeats, not a
 * minute early or late. Leases without a server stamp (written by older
 * versions) are judged by observation by a long-lived reader (`--watch`).
 */
import { expect, it } from 'vitest';
import { defineContainer, getContainerStatus, LeaseObserver, MongoStore, Runner, type ContainerStatusReport } from '../src/index.js';
import { runPts } from './cli.support.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

/** Far longer than the test, so a stopped runner is lost but its lease never expires meanwhile. */
const LEASE_MS = 30_000;
const HEARTBEAT_MS = 1000;
const SKEWS = { ahead: 60_000, behind: -60_000 } as const;
type Name = keyof typeof SKEWS;
const NAMES = Object.keys(SKEWS) as Name[];

const status = (name: Name) => getContainerStatus(name, { connection: db().connection });

async function until(name: Name, ok: (r: ContainerStatusReport) => boolean, timeoutMs: number): Promise<ContainerStatusReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await status(name);
    if (ok(r)) return r;
    if (Date.now() > deadline) throw new Error(`${name}: timed out; last report: ${JSON.stringify(r.tasks)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

it('runners with clocks a minute ahead and behind are alive, and lost once stopped', { timeout: 120_000 }, async () => {
  const children = Object.fromEntries(
    NAMES.map((name) => [
      name,
      spawnTsChild('test/fixtures/status-skew-child.ts', [], {
        MONGODB_URI: db().uriWithDb,
        CONTAINER: name,
        RUNNER: `runner-${name}`,
        SKEW_MS: String(SKEWS[name]),
        LEASE_MS: String(LEASE_MS),
        HEARTBEAT_MS: String(HEARTBEAT_MS),
      }),
    ]),
  ) as Record<Name, ReturnType<typeof spawnTsChild>>;
  for (const name of NAMES) await children[name].waitForLine('working', 60_000);
  // Let a few heartbeats land.
  await new Promise((r) => setTimeout(r, 2.5 * HEARTBEAT_MS));

  // Alive, read after read, from this process.
  for (let i = 0; i < 8; i++) {
    for (const name of NAMES) {
      const r = await status(name);
      expect(r.tasks[0], name).toMatchObject({ status: 'running', runnerId: `runner-${name}`, runnerLost: null });
      expect(r.runnersLost, name).toBe(0);
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  for (const name of NAMES) {
    const pts = await runPts(db().uriWithDb, ['status', name]);
    expect(pts.stderr).toBe('');
    expect(pts.code).toBe(0);
    expect(pts.stdout, name).toMatch(/^work\s+running\s+1\s/m);
    expect(pts.stdout, name).not.toContain('runner lost');
  }

  // Frozen: lost after two missed heartbeats, judged on the server's clock; the lease has not expired.
  for (const name of NAMES) children[name].child.kill('SIGSTOP'); // not kill(): it waits for an exit
  const stoppedAt = Date.now();
  for (const name of NAMES) {
    const r = await until(name, (rep) => rep.tasks[0]!.runnerLost !== null, 15_000);
    const lost = r.tasks[0]!.runnerLost!;
    expect(Date.now() - stoppedAt, name).toBeLessThan(15_000);
    expect(lost, name).toMatchObject({ holder: `runner-${name}`, expired: false, judgedBy: 'server-clock' });
    expect(lost.silentForMs, name).toBeGreaterThan(2 * HEARTBEAT_MS);
    expect(lost.expiresInMs, name).toBeGreaterThan(0);
    expect(lost.expiresInMs, name).toBeLessThanOrEqual(LEASE_MS - 2 * HEARTBEAT_MS);
    // The countdown is on this reader's clock, whatever the holder's clock wrote.
    expect(Math.abs(lost.takeoverAt.getTime() - (Date.now() + lost.expiresInMs)), name).toBeLessThan(10_000);
    expect(r.runnersLost).toBe(1);
  }
  for (const name of NAMES) {
    const pts = await runPts(db().uriWithDb, ['status', name]);
    expect(pts.code).toBe(0);
    expect(pts.stdout, name).toMatch(/^work\s+runner lost\s+1\s/m);
    const inS = Number(/lease expires in (\d+) s/.exec(pts.stdout)?.[1]);
    expect(inS, name).toBeGreaterThan(0);
    expect(inS, name).toBeLessThanOrEqual(LEASE_MS / 1000);
  }
});

it('a long-lived reader judges leases without a server stamp by observation, on its own clock', async () => {
  const name = 'unstamped';
  const container = () => defineContainer(name).task('alive', async () => null).task('dead', async () => null);
  await Runner.create({ connection: db().connection, container: container() });
  // Runners on a machine whose clock is a minute behind, of a version that did not stamp renewals.
  const behindNow = () => Date.now() - 60_000;
  const behind = await MongoStore.create(db().connection, { clock: { now: behindNow } });
  for (const task of ['alive', 'dead']) {
    await behind.claimTask({ container: name, task, expectedToken: 0, claim: { runnerId: `runner-${task}`, attempt: 1, leaseMs: 5000, heartbeatMs: 200, checkpoint: null } });
  }
  const transitions = db().connection.collection('pts_transitions');
  await transitions.updateMany({ container: name }, { $unset: { leaseRenewedAt: '' } });
  const heartbeat = () => transitions.updateOne({ container: name, task: 'alive', token: 1 }, { $set: { leaseUntil: new Date(behindNow() + 5000) } });

  // One read can only compare wall clocks: both look expired.
  const once = await getContainerStatus(name, { connection: db().connection });
  expect(once.tasks.map((t) => t.runnerLost?.judgedBy)).toEqual(['wall-clock', 'wall-clock']);

  const observer = new LeaseObserver(30_000);
  const read = () => getContainerStatus(name, { connection: db().connection }, { observer });
  const first = await read();
  expect(first.tasks.map((t) => t.runnerLost)).toEqual([null, null]);
  let deadLost: ContainerStatusReport['tasks'][number]['runnerLost'] = null;
  const t0 = performance.now();
  while (performance.now() - t0 < 2000) {
    await heartbeat();
    const r = await read();
    expect(r.tasks[0]!.runnerLost).toBeNull();
    deadLost = r.tasks[1]!.runnerLost;
    if (deadLost && performance.now() - t0 > 1000) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  expect(deadLost).toMatchObject({ holder: 'runner-dead', judgedBy: 'observation', expired: false });
  expect(deadLost!.silentForMs).toBeGreaterThan(400);
  expect(deadLost!.expiresInMs).toBeGreaterThan(2000);
  expect(deadLost!.expiresInMs).toBeLessThan(4600);
});
