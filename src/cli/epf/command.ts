/**
 * `pts epf`: validates everything, opens the database and the feed, and runs
 * one slot (./once.ts) or the hourly schedule (./hourly.ts). SIGINT and
 * SIGTERM stop it gracefully: running steps are released, so another run
 * continues them at once from their checkpoints.
 */
import fs from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { Ledger, MongoStore } from '../../index.js';
import type { EpfEnv } from '../../ingest/epf/env.js';
import { prunePresence } from '../../ingest/epf/run-presence.js';
import { ExitCode, usageError } from '../errors.js';
import type { CliIo } from '../io.js';
import type { GlobalOptions } from '../session.js';
import { runHourly } from './hourly.js';
import { describeHolders, EPF_CONTAINER, runOnce, unfinishedRuns } from './once.js';
import { resolveEpfSettings, type EpfFlags, type EpfSettings } from './options.js';
import { epfOutput, type EpfOutput } from './output.js';
import { ConsoleReporter } from './report.js';
import { openEpfDatabase, openEpfFeed } from './setup.js';

/** The ledger that remembers ingested EPF files. */
export const EPF_LEDGER = 'epf';

/** Runs `pts epf` and resolves with the exit code; usage errors are thrown (exit 2) before anything is touched. */
export async function runEpf(flags: EpfFlags, globals: GlobalOptions, io: CliIo): Promise<number> {
  const startedAt = Date.now();
  const s = resolveEpfSettings(flags, io.env);
  if (s.fresh && s.mode === 'hourly') throw usageError('--fresh starts one run over; it cannot be combined with --hourly');
  if (s.join && s.fresh) throw usageError('--fresh starts over; it cannot join a run in progress (--join)');
  if (s.now && s.mode !== 'hourly') throw usageError('--now runs the current hour of the --hourly schedule at start; without --hourly every run is now');
  if (s.fresh && !s.yes && !(await confirmFresh(io))) {
    io.stderr.write('pts: --fresh not confirmed; nothing was changed\n');
    return ExitCode.USAGE;
  }
  const out = epfOutput(io, { json: s.json, format: s.logFormat });
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      if (signal === 'SIGINT') process.exit(ExitCode.INTERRUPTED);
      return;
    }
    out.log('info', `${signal}: stopping, releasing running steps (Ctrl-C again to force)…`, { event: 'epf:stopping', signal });
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const db = await openEpfDatabase(globals, io, out);
  try {
    if (controller.signal.aborted) return ExitCode.OK;
    if (s.fresh) {
      const code = await startOver(db.connection, s, out);
      if (code !== ExitCode.OK) return code;
    }
    const feed = await openEpfFeed(s, out);
    try {
      const reporter = new ConsoleReporter(Boolean(out.display.isTTY) && s.logFormat === 'text', (l, fields) => out.say(l, fields), {
        stream: out.display,
      });
      const env: EpfEnv = {
        connection: db.connection,
        feed: feed.feed,
        ledger: await Ledger.create({ connection: db.connection, name: EPF_LEDGER }),
        workDir: s.workDir,
        ...(feed.auth ? { auth: feed.auth } : {}),
        prefix: s.tablePrefix,
        batchSize: s.batchSize,
        incrementalWrite: s.incrementalWrite,
        maxRejectFraction: s.maxRejectFraction,
        keepFiles: s.keepFiles,
        ...(s.downloadCheckpointBytes !== undefined ? { downloadCheckpointBytes: s.downloadCheckpointBytes } : {}),
        reporter,
      };
      const common = { connection: db.connection, out, json: s.json, signal: controller.signal, checkpointIntervalMs: s.checkpointIntervalMs };
      if (s.mode === 'hourly') {
        await runHourly({ ...common, env: { ...env, reporter }, now: s.now, join: s.join });
        out.say('stopped: the hourly schedule ended gracefully; running steps were released', { event: 'epf:stopped' });
        return ExitCode.OK;
      }
      return await runOnce({ ...common, env, reporter, startedAt, join: s.join });
    } finally {
      await feed.stop().catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await db.close();
  }
}

/** Asks on the terminal; false when there is none to ask on. */
async function confirmFresh(io: CliIo): Promise<boolean> {
  if (!process.stdin.isTTY || !io.stderr.isTTY) {
    throw usageError('--fresh forgets every ingested file and earlier run: pass --yes to confirm when not on a terminal');
  }
  const rl = createInterface({ input: process.stdin, output: io.stderr });
  try {
    const answer = await rl.question(
      'pts epf --fresh forgets every ingested EPF file (they are ingested again), deletes earlier EPF runs and the work folder. Continue? [y/N] ',
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/**
 * `--fresh`: forgets the ledger, deletes every EPF container and the work
 * folder, so the next run ingests everything again. The EPF tables stay
 * readable meanwhile (a full import replaces them when it is published).
 */
async function startOver(connection: EpfEnv['connection'], s: EpfSettings, out: EpfOutput): Promise<number> {
  const store = await MongoStore.create(connection);
  const busy = (await unfinishedRuns(connection, store, s.tablePrefix)).find((r) => r.live.length > 0);
  if (busy) {
    out.log('warn', `${busy.container.name} is running in another process (${describeHolders(busy.live)}); --fresh changed nothing`, {
      event: 'epf:busy',
    });
    return ExitCode.BUSY;
  }
  let containers = 0;
  for (const c of await store.listContainers()) if (EPF_CONTAINER.test(c.name) && (await store.deleteContainer(c.name))) containers++;
  const forgotten = await (await Ledger.create({ connection, name: EPF_LEDGER })).forget();
  await prunePresence(connection, s.tablePrefix, () => false);
  await fs.rm(s.workDir, { recursive: true, force: true });
  out.say(`fresh start: forgot ${forgotten} ingested file(s), deleted ${containers} earlier run(s) and ${s.workDir}`, {
    event: 'epf:fresh',
    forgotten,
    containers,
  });
  return ExitCode.OK;
}
