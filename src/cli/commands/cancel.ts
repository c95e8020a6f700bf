import type { Command } from 'commander';
import { cancelContainer } from '../../engine/container-commands.js';
import { getContainerStatus } from '../../status/inspect.js';
import { globalOptions, printJson, type CliContext } from '../context.js';
import { println } from '../io.js';
import { clean } from '../render/format.js';
import { withSession } from '../session.js';

/** Registers `pts cancel`. */
export function registerCancel(program: Command, ctx: CliContext): void {
  program
    .command('cancel')
    .description('cancel a running container')
    .addHelpText(
      'after',
      '\nPending tasks are cancelled at once; running attempts are aborted by their runners at their next check.\n' +
        'A container that already finished is left alone (exit 0, "already finished").',
    )
    .argument('<container>', 'container name')
    .option('--json', 'print {"container", "cancelled": boolean, "status"}')
    .action(async (container: string, opts: { json?: boolean }, command: Command) => {
      const { cancelled, report } = await withSession(globalOptions(command), ctx.io, async ({ store, source }) => {
        const cancelled = await cancelContainer(store, container);
        return { cancelled, report: await getContainerStatus(container, source) };
      });
      if (opts.json) return printJson(ctx.io, { container, cancelled, status: report.status });
      const name = clean(container);
      if (!cancelled) return println(ctx.io, `Container "${name}" already finished (${report.status}); nothing to cancel.`);
      if (report.status === 'cancelled') return println(ctx.io, `Container "${name}" cancelled.`);
      const running = report.counts.running;
      println(
        ctx.io,
        `Cancel requested for "${name}"; ${running} running task${running === 1 ? '' : 's'} will be aborted by ${
          running === 1 ? 'its runner' : 'their runners'
        }.`,
      );
    });
}
