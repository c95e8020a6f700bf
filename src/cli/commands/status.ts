import type { Command } from 'commander';
import { LeaseObserver } from '../../engine/lease-observer.js';
import { getContainerStatus } from '../../status/inspect.js';
import { globalOptions, printJson, type CliContext } from '../context.js';
import { usageError } from '../errors.js';
import { println } from '../io.js';
import { renderStatus } from '../render/text.js';
import { withSession } from '../session.js';
import { watchContainer } from './watch.js';

/** Default refresh interval of `status --watch`. */
export const DEFAULT_INTERVAL_MS = 1000;
/** Shortest refresh interval accepted. */
export const MIN_INTERVAL_MS = 50;

interface StatusOptions {
  watch?: boolean;
  json?: boolean;
  interval: string;
}

/** Parses `--interval`; throws a usage error unless it is an integer of at least {@link MIN_INTERVAL_MS}. */
export function parseInterval(value: string): number {
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < MIN_INTERVAL_MS) {
    throw usageError(`invalid --interval "${value}": expected whole milliseconds, at least ${MIN_INTERVAL_MS}`);
  }
  return ms;
}

/** Registers `pts status`. */
export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('show a container and its tasks (--watch: live progress until it finishes)')
    .argument('<container>', 'container name')
    .option('-w, --watch', 'refresh until the container finishes (live bars on a terminal, text snapshots otherwise)')
    .option('--json', 'print the status report as JSON (with --watch: one JSON line per refresh)')
    .option('-i, --interval <ms>', 'refresh interval of --watch in milliseconds', String(DEFAULT_INTERVAL_MS))
    .addHelpText(
      'after',
      '\nWith --watch the exit code says how the container ended: 0 succeeded, 4 failed, 5 cancelled, 130 interrupted.',
    )
    .action(async (container: string, opts: StatusOptions, command: Command) => {
      const intervalMs = parseInterval(opts.interval);
      ctx.exitCode = await withSession(globalOptions(command), ctx.io, async ({ source }) => {
        // Watching: leases the server did not stamp are judged by observation over the reads.
        // (Its default lease only stands in for claims without one, which are never observed.)
        const observer = new LeaseObserver(30_000);
        const read = () => getContainerStatus(container, source, { observer });
        if (opts.watch) return watchContainer(read, { io: ctx.io, json: opts.json === true, intervalMs });
        const report = await read();
        if (opts.json) printJson(ctx.io, report);
        else for (const line of renderStatus(report)) println(ctx.io, line);
        return 0;
      });
    });
}
