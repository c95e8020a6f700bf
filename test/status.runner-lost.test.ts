/**
 * A runner SIGKILLed mid-task: status (API and `pts status`) says its runner is
 * lost and when its lease expires, instead of `running` with a growing time;
 * the runner that waits for the lease says so once (`task:waiting-for-lease`);
 * the attempt that takes over starts at the checkpoint's progress, not 0 %.
 */
import { expect, it } from 'vitest';
import { getContainerStatus, Runner, type ContainerStatusReport, type RunnerEventMap } from '../src/index.js';
import { renderMermaid } from '../src/cli/render/mermaid.js';
import { renderSnapshot, renderStatus } from '../src/cli/render/text.js';
import { runPts } from './cli.support.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { lostRunnerContainer } from './fixtures/lost-runner-container.js';

const db = databasePerFile();
killChildrenAfterEach();

/**
 * Long enough that `pts status` (a tsx start-up) runs while the dead runner's
 * lease is still valid, also on a busy machine: with 15 s, a start-up under a
 * load average of 30 read the lease already expired.
 */
const LEASE_MS = 60_000;
const HEARTBEAT_MS = 1000;

async function until(read: () => Promise<ContainerStatusReport>, ok: (r: ContainerStatusReport) => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await read();
    if (ok(r)) return r;
    if (Date.now() > deadline) throw new Error(`timed out; last report: ${JSON.stringify(r.tasks)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

it('shows a lost runner, announces the wait once, and resumes at the checkpoint progress', { timeout: 240_000 }, async () => {
  const status = () => getContainerStatus('lost-runner', { connection: db().connection });
  const child = spawnTsChild('test/fixtures/lost-runner-child.ts', [], {
    MONGODB_URI: db().uriWithDb,
    LEASE_MS: String(LEASE_MS),
    HEARTBEAT_MS: String(HEARTBEAT_MS),
  });
  await child.waitForLine('chunk 8');
  await child.kill('SIGKILL');

  // Two heartbeats missed: lost, although the lease has not expired.
  const lost = await until(status, (r) => r.tasks[0]!.runnerLost !== null, LEASE_MS / 2);
  const download = lost.tasks[0]!;
  expect(download).toMatchObject({ status: 'running', attempt: 1, runnerId: 'runner-A' });
  expect(download.runnerLost).toMatchObject({ holder: 'runner-A', expired: false, judgedBy: 'server-clock' });
  expect(download.runnerLost!.expiresInMs).toBeGreaterThan(0);
  expect(download.runnerLost!.lastHeartbeatAt!.getTime()).toBeLessThan(lost.tasks[0]!.runnerLost!.expiresAt.getTime());
  expect(download.percentComplete).toBeGreaterThanOrEqual(40);
  expect(lost.runnersLost).toBe(1);
  // The ETA includes the wait for the lease.
  expect(lost.etaMs).toBeGreaterThanOrEqual(download.runnerLost!.expiresInMs);

  const pts = await runPts(db().uriWithDb, ['status', 'lost-runner']);
  expect(pts.stderr).toBe('');
  expect(pts.code).toBe(0);
  expect(pts.stdout).toMatch(/^download\s+runner lost\s+1\s+\d+(\.\d)?%/m);
  expect(pts.stdout).toMatch(/^ {4}runner lost, waiting for takeover \(lease expires in \d+ s\); held by runner-A$/m);
  expect(pts.stdout).toMatch(/^Tasks: .*\(1 with a lost runner\)$/m);
  // Once the lease has expired and nobody took over, the line says so (rendered at a later "now").
  const later = download.runnerLost!.takeoverAt.getTime() + 3000;
  expect(renderStatus(lost, later).join('\n')).toContain('runner lost, waiting for takeover (lease expired 3 s ago)');
  // `status --watch` on a pipe: the time stops at the last heartbeat instead of growing.
  const fiveBefore = download.runnerLost!.takeoverAt.getTime() - 5000;
  const watchLines = renderSnapshot(lost, fiveBefore).join('\n');
  expect(watchLines).toMatch(/^ {2}download \d+(\.\d)?% attempt 1, \S+ - runner lost, waiting for takeover \(lease expires in 5 s\)$/m);
  const timeShownAt = (now: number) => /attempt 1, (\S+) - /.exec(renderSnapshot(lost, now).join('\n'))![1];
  expect(timeShownAt(fiveBefore + 60_000)).toBe(timeShownAt(fiveBefore));
  expect(renderMermaid(lost)).toMatch(/\["download<br\/>runner lost \d+(\.\d)?%"\]:::running/);

  // A second runner waits for the lease, says so once, then takes over from the checkpoint.
  const waits: Array<RunnerEventMap['task:waiting-for-lease']> = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let started!: (checkpoint: unknown) => void;
  const takenOver = new Promise<unknown>((r) => (started = r));
  const runner = await Runner.create({
    connection: db().connection,
    container: lostRunnerContainer(async (ctx) => {
      started(ctx.lastCheckpoint);
      await gate;
      await ctx.progress(1, 'chunk 20/20');
    }),
    pollMs: 100,
    runnerId: 'runner-B',
  });
  runner.on('task:waiting-for-lease', (e) => waits.push(e));
  const run = runner.run();
  const checkpoint = (await takenOver) as { chunk: number };
  expect(checkpoint.chunk).toBeGreaterThanOrEqual(8);

  const resumed = await status();
  expect(resumed.tasks[0]).toMatchObject({ status: 'running', attempt: 2, runnerId: 'runner-B', runnerLost: null, statusText: '' });
  // The checkpoint was written after its chunk's progress: the attempt starts at exactly that progress.
  expect(resumed.tasks[0]!.percentComplete).toBe(checkpoint.chunk * 5);
  open();
  expect((await run).status).toBe('succeeded');

  expect(waits).toHaveLength(1);
  expect(waits[0]).toMatchObject({ container: 'lost-runner', task: 'download', attempt: 1, holder: 'runner-A' });
  expect(waits[0]!.expiresAt.getTime()).toBe(download.runnerLost!.expiresAt.getTime());
});
