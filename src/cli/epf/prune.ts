/**
 * `pts epf prune`: the retention rule of the EPF job, by hand or from cron.
 *
 * - EPF containers (`epf-<time>`) that ended, created more than
 *   `--keep-days` ago (default 30), are deleted with their tasks and logs;
 *   a container still running is never touched.
 * - Ended slot records of the `epf-hourly` schedule older than `--keep-days`.
 * - Ledger entries recorded more than `--ledger-keep-days` ago (default 90).
 *   A forgotten file that the feed still lists would be ingested again, so
 *   this window must stay longer than the feed keeps files: EPF's `current`
 *   folders hold the latest weekly full and its incrementals.
 * - Claim documents of recorded ledger items (a recorded item is never
 *   claimed again), and the ownership of deleted runs by their slots.
 * - Presence documents of containers that no longer run.
 */
import type { Command } from 'commander';
import { Ledger, MongoScheduleStore, MongoStore } from '../../index.js';
import { EPF_SCHEDULE_NAME } from '../../ingest/epf/schedule.js';
import { prunePresence } from '../../ingest/epf/run-presence.js';
import { globalOptions, type CliContext } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { EPF_LEDGER } from './command.js';
import { EPF_CONTAINER } from './once.js';
import { epfOutput } from './output.js';
import { openEpfDatabase } from './setup.js';

const DAY_MS = 86_400_000;

/** What one prune removed (or would remove, with `--dry-run`). */
export interface EpfPruneResult {
  containers: string[];
  slots: number;
  ledgerEntries: number;
  /** Claim documents of recorded ledger items. */
  ledgerClaims: number;
  /** Container ownerships of slots whose containers were deleted. */
  containerOwners: number;
  presence: number;
  dryRun: boolean;
}

function days(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0 || n > 36_500) throw usageError(`invalid ${name} ${JSON.stringify(value)}: expected whole days from 0 to 36500`);
  return n;
}

/** Registers `pts epf prune` under `pts epf`. */
export function registerEpfPrune(epf: Command, ctx: CliContext): void {
  epf
    .command('prune')
    .description('delete EPF runs, slot records and ledger entries past the retention window')
    .option('--keep-days <days>', 'keep containers and slot records of the last N days', '30')
    .option('--ledger-keep-days <days>', 'keep ledger entries of the last N days (longer than the feed keeps files)', '90')
    .option('--table-prefix <prefix>', 'collection prefix of the EPF tables (EPF_PREFIX)', undefined)
    .option('--dry-run', 'say what would be deleted, delete nothing')
    .option('--json', 'print the result as JSON')
    .action(async (_: unknown, command: Command) => {
      // --json and --table-prefix are also options of `pts epf`: whichever command parsed them.
      const o = command.optsWithGlobals<{ keepDays?: string; ledgerKeepDays?: string; tablePrefix?: string; dryRun?: boolean; json?: boolean }>();
      const keepDays = days(o.keepDays, '--keep-days', 30);
      const ledgerKeepDays = days(o.ledgerKeepDays, '--ledger-keep-days', 90);
      const prefix = o.tablePrefix ?? ctx.io.env.EPF_PREFIX ?? 'epf_';
      const out = epfOutput(ctx.io, { json: Boolean(o.json), format: 'text' });
      const db = await openEpfDatabase(globalOptions(command), ctx.io, out);
      try {
        const result = await pruneEpf(db.connection, { keepDays, ledgerKeepDays, prefix, dryRun: Boolean(o.dryRun) });
        const verb = result.dryRun ? 'would delete' : 'deleted';
        out.say(
          `${verb} ${result.containers.length} run(s), ${result.slots} slot record(s), ${result.ledgerEntries} ledger entr${result.ledgerEntries === 1 ? 'y' : 'ies'}, ${result.ledgerClaims} ledger claim(s), ${result.containerOwners} container owner(s), ${result.presence} presence record(s)`,
        );
        if (o.json) out.json(result);
        ctx.exitCode = ExitCode.OK;
      } finally {
        await db.close();
      }
    });
}

/** Applies the retention rule (see the module comment). */
export async function pruneEpf(
  connection: Parameters<typeof MongoStore.create>[0],
  o: { keepDays: number; ledgerKeepDays: number; prefix: string; dryRun: boolean; now?: Date },
): Promise<EpfPruneResult> {
  const now = o.now ?? new Date();
  const cutoff = new Date(now.getTime() - o.keepDays * DAY_MS);
  const ledgerCutoff = new Date(now.getTime() - o.ledgerKeepDays * DAY_MS);
  const store = await MongoStore.create(connection);
  const all = (await store.listContainers()).filter((c) => EPF_CONTAINER.test(c.name));
  const old = all.filter((c) => c.status !== 'running' && c.createdAt < cutoff).map((c) => c.name);
  const ledger = await Ledger.create({ connection, name: EPF_LEDGER });
  if (o.dryRun) {
    const slots = (await (await MongoScheduleStore.create(connection)).listSlots(EPF_SCHEDULE_NAME)).filter(
      (s) => s.slot < cutoff && !['queued', 'started'].includes(s.state),
    ).length;
    const ledgerEntries = (await ledger.list()).filter((e) => e.recordedAt < ledgerCutoff).length;
    return { containers: old, slots, ledgerEntries, ledgerClaims: 0, containerOwners: 0, presence: 0, dryRun: true };
  }
  const containers: string[] = [];
  for (const name of old) if (await store.deleteContainer(name)) containers.push(name);
  const schedules = await MongoScheduleStore.create(connection);
  const slots = await schedules.deleteEndedSlots(EPF_SCHEDULE_NAME, cutoff);
  // Names of deleted runs are free again; a run still stored keeps its owner (a later slot on its name must fail).
  const containerOwners = await schedules.releaseContainers(containers);
  const { entries: ledgerEntries, claims: ledgerClaims } = await ledger.forgetCounted({ recordedBefore: ledgerCutoff });
  const running = new Set(all.filter((c) => c.status === 'running').map((c) => c.name));
  const presence = await prunePresence(connection, o.prefix, (c) => running.has(c));
  return { containers, slots, ledgerEntries, ledgerClaims, containerOwners, presence, dryRun: false };
}
