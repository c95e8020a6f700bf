import type { Command } from 'commander';
import { retryTasks } from '../../engine/container-commands.js';
import { globalOptions, printJson, type CliContext } from '../context.js';
import { println } from '../io.js';
import { clean } from '../render/format.js';
import { withSession } from '../session.js';

/** Registers `pts retry`. */
export function registerRetry(program: Command, ctx: CliContext): void {
  program
    .command('retry')
    .description('put failed tasks (and their skipped/cancelled dependents) back to pending')
    .addHelpText(
      'after',
      '\nThe container is reopened; a runner (Runner.create + run) must be running for the tasks to execute.\n' +
        'Exit codes: 0 done (also when nothing needed a retry), 2 task is not failed/skipped/cancelled, 3 unknown container or task.',
    )
    .argument('<container>', 'container name')
    .argument('[task]', 'retry only this task and its dependents')
    .option('--json', 'print {"container", "reset": [task names]}')
    .action(async (container: string, task: string | undefined, opts: { json?: boolean }, command: Command) => {
      const reset = await withSession(globalOptions(command), ctx.io, ({ store }) => retryTasks(store, container, task));
      if (opts.json) return printJson(ctx.io, { container, reset });
      if (reset.length === 0) {
        return println(ctx.io, `Nothing to retry in "${clean(container)}": no failed, skipped or cancelled tasks.`);
      }
      println(ctx.io, `Reset ${reset.length} task${reset.length === 1 ? '' : 's'} of "${clean(container)}" to pending:`);
      for (const name of reset) println(ctx.io, `  ${clean(name)}`);
    });
}
