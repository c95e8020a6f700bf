/**
 * `pts epf` without --hourly: runs one slot now and exits. A run that a
 * crash interrupted (its process is gone) is resumed; a run in progress
 * elsewhere is left alone (exit 75, "try again later"), unless `--join` asks
 * to work beside it: its steps then spread over both processes (a file's
 * steps stay with the runner that holds its bytes, see the EPF job's affinity keys).
 */
import type { Connection } from 'mongoose';
import { MongoStore, Runner, type ContainerRecord } from '../../index.js';
import type { EpfEnv } from '../../ingest/epf/env.js';
import { epfContainer, epfContainerName, EPF_RUNNER_LIMITS } from '../../ingest/epf/job.js';
import { releaseSlotClaims } from '../../ingest/epf/file-claim.js';
import { announcePresence, presenceOf, type RunPresence } from '../../ingest/epf/run-presence.js';
import { summarize, type EpfSummary } from '../../ingest/epf/summary.js';
import { ExitCode } from '../errors.js';
import { followRunner } from './hourly.js';
import { formatDuration, type EpfOutput } from './output.js';
import type { ConsoleReporter } from './report.js';
import { printSummary } from './report.js';

/** Names of EPF containers: `epf-` and an ISO time. */
export const EPF_CONTAINER = /^epf-\d{4}-\d\d-\d\dT/;

/** The EPF containers still running (newest first), with who runs each now. */
export async function unfinishedRuns(
  connection: Connection,
  store: MongoStore,
  tablePrefix: string,
): Promise<Array<{ container: ContainerRecord; live: RunPresence[] }>> {
  const running = (await store.listContainers())
    .filter((c) => EPF_CONTAINER.test(c.name) && c.status === 'running')
    .sort((a, b) => b.name.localeCompare(a.name));
  return Promise.all(
    running.map(async (container) => ({ container, live: (await presenceOf(connection, tablePrefix, container.name)).filter((p) => p.alive) })),
  );
}

/** Describes who runs a container, for the "already running" line. */
export function describeHolders(live: RunPresence[]): string {
  return live.map((p) => `pid ${p.pid} on ${p.host}, heartbeat ${formatDuration(p.silentForMs)} ago`).join('; ');
}

/**
 * Runs one slot (or resumes the interrupted one) until it ends or `signal`
 * aborts. Resolves with the exit code.
 */
export async function runOnce(o: {
  connection: Connection;
  env: EpfEnv;
  reporter: ConsoleReporter;
  out: EpfOutput;
  json: boolean;
  signal: AbortSignal;
  checkpointIntervalMs?: number;
  startedAt: number;
  /** Work beside a run in progress elsewhere instead of exiting 75. */
  join?: boolean;
}): Promise<number> {
  const store = await MongoStore.create(o.connection);
  const runs = await unfinishedRuns(o.connection, store, o.env.prefix);
  const busy = runs.find((r) => r.live.length > 0);
  if (busy && o.join) {
    o.out.say(`joining ${busy.container.name}, running in another process (${describeHolders(busy.live)})`, {
      event: 'epf:joining',
      container: busy.container.name,
    });
  } else if (busy) {
    o.out.log('warn', `${busy.container.name} is running in another process (${describeHolders(busy.live)}); not starting a second run`, {
      event: 'epf:busy',
      container: busy.container.name,
    });
    return ExitCode.BUSY;
  }
  const interrupted = busy ? undefined : runs[0]?.container.name;
  const name = busy?.container.name ?? interrupted ?? epfContainerName(new Date(), true);
  if (interrupted) o.out.say(`resuming ${name}: its runner is gone (interrupted earlier)`, { event: 'epf:resuming', container: name });
  const runner = await Runner.create({
    connection: o.connection,
    container: epfContainer(name, o.env),
    ...EPF_RUNNER_LIMITS,
    ...(o.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: o.checkpointIntervalMs } : {}),
    // On SIGTERM/SIGINT, running steps are released at once: they resume from their checkpoints.
    stopTimeoutMs: 0,
    signal: o.signal,
  });
  if (interrupted || busy) {
    const snap = await store.loadSnapshot(name);
    const ended = snap?.tasks.filter((t) => ['succeeded', 'failed', 'skipped', 'cancelled'].includes(t.state.status)).length ?? 0;
    o.reporter.setTasks(ended, snap?.tasks.length ?? 0);
  }
  const presence = await announcePresence(o.connection, {
    prefix: o.env.prefix,
    container: name,
    runnerId: runner.runnerId,
    leaseMs: EPF_RUNNER_LIMITS.leaseMs,
  });
  let released = 0;
  runner.on('task:released', () => (released += 1));
  followRunner(runner, o.reporter);
  try {
    const result = await runner.run();
    o.reporter.stop();
    if (result.status === 'stopped') {
      o.out.say(`stopped: ${name} is left for the next run (${released} running step(s) released; another pts epf continues them at once)`, {
        event: 'epf:stopped',
        container: name,
        released,
      });
      return ExitCode.OK;
    }
    // Failed or cancelled: the files it claimed go at once, so the next run need not wait out their claims.
    if (result.status !== 'succeeded') await releaseSlotClaims(o.env, name).catch((error: Error) => o.out.log('warn', `could not release the file claims of ${name}: ${error.message}`, { event: 'epf:error' }));
    const summary = await summarize(store, name, result.status, o.reporter.bytesReceived, Date.now() - o.startedAt, o.connection, o.env.prefix);
    report(summary, o.out, o.json);
    return result.status === 'succeeded' ? ExitCode.OK : ExitCode.ERROR;
  } finally {
    await presence.stop();
  }
}

/** Prints the summary: text on stdout, or with `--json` the object on stdout and the text on stderr. */
export function report(summary: EpfSummary, out: EpfOutput, json: boolean): void {
  printSummary(summary, (l) => out.say(l));
  if (json) out.json(summary);
}
