import type { Command } from 'commander';
import { globalOptions, type CliContext } from '../context.js';
import { usageError } from '../errors.js';
import { runEpf } from '../epf/command.js';
import { registerEpfPrune } from '../epf/prune.js';

const HELP = `
Feed (one of):
  --fixture                 a generated local feed (needs the bzip2 command)
  EPF_BASE_URL              feed root, e.g. https://feeds.itunes.apple.com/feeds/epf/v5/current/
  EPF_USERNAME, EPF_PASSWORD  HTTP Basic credentials; alone, they select Apple's v5 feed

Options from --layout on can also be set by their variable:
  EPF_LAYOUT, EPF_WORK_DIR, EPF_PREFIX (--table-prefix), EPF_BATCH_SIZE, EPF_MAX_REJECT_FRACTION,
  EPF_INCREMENTAL_WRITE, EPF_KEEP_FILES=1, EPF_LOG_FORMAT, EPF_FIXTURE_SCALE, EPF_FIXTURE_RATE,
  EPF_DOWNLOAD_CHECKPOINT_BYTES, EPF_CHECKPOINT_INTERVAL_MS
Database: --uri or MONGODB_URI, else the embedded server (data in ./.pts-data).

Signals: SIGINT and SIGTERM stop gracefully (running steps are released for the next run; exit 0);
a second SIGINT forces exit 130.
Exit codes: 0 done (or stopped), 1 the run failed, 2 bad usage, 75 another run is in progress (see --join).
See docs/epf.md.`;

/** Registers `pts epf` (and `pts epf prune`). */
export function registerEpf(program: Command, ctx: CliContext): void {
  const epf = program
    .command('epf')
    .description('ingest Apple\'s Enterprise Partner Feed (EPF) into MongoDB: one slot now, or --hourly')
    .option('--hourly', 'run the 0 * * * * schedule (UTC) until SIGINT/SIGTERM')
    .option('--now', 'with --hourly: run a slot at start (the current hour, or a manual slot when it was already claimed)')
    .option('--join', 'work beside a run in progress elsewhere (another machine), instead of exiting 75; with --hourly, help every slot that another scheduler runs')
    .option('--json', 'print only the summary, as one JSON object, on stdout (everything else on stderr)')
    .option('--fresh', 'start over: forget what was ingested and every earlier run (asks first; --yes to skip)')
    .option('-y, --yes', 'answer yes to --fresh\'s question')
    .option('--fixture', 'use a generated local feed instead of a real one')
    .option('--fixture-unless-feed', 'use the generated feed only when no feed is configured (npm run epf)')
    .option('--feed-url <url>', 'feed root URL (EPF_BASE_URL)')
    .option('--layout <layout>', 'feed layout: v5 or v3 (default v5)')
    .option('--work-dir <dir>', 'downloads and extracted files (default ./.epf-work)')
    .option('--table-prefix <prefix>', 'collection prefix of the EPF tables (default epf_)')
    .option('--batch-size <rows>', 'rows per batch and checkpoint (default 2000)')
    .option('--max-reject-fraction <0-1>', 'share of rejected rows above which a table fails (default 0.01)')
    .option('--incremental-write <mode>', 'auto, upsert, generation or delete-insert (default auto: chosen per server)')
    .option('--keep-files', 'keep archives and extracted files after publishing')
    .option('--log-format <format>', 'text or json (one JSON object per line)')
    .option('--fixture-scale <n>', 'fixture size multiplier (default 1)')
    .option('--fixture-rate <bytes>', 'fixture speed per file, bytes per second')
    .option('--download-checkpoint-bytes <bytes>', 'bytes between download checkpoints (default 8 MiB)')
    .option('--checkpoint-interval-ms <ms>', 'least time between checkpoints of a step (default 1000)')
    .addHelpText('after', HELP)
    .action(async (flags: Record<string, unknown>, command: Command) => {
      if (command.args.length > 0) throw usageError(`unexpected argument "${command.args[0]}" (see pts epf --help)`);
      ctx.exitCode = await runEpf(flags, globalOptions(command), ctx.io);
    });
  registerEpfPrune(epf, ctx);
}
