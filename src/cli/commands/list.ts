import type { Command } from 'commander';
import { summarizeContainer } from '../../status/container-status.js';
import { showUnfinishedCommands } from '../../status/unfinished-commands.js';
import { globalOptions, printJson, type CliContext } from '../context.js';
import { println } from '../io.js';
import { renderList, toSummary, type ContainerSummary } from '../render/text.js';
import { withSession } from '../session.js';

/** Registers `pts list`. */
export function registerList(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .alias('ls')
    .description('list containers: status, % complete, task counts, creation time')
    .option('--json', 'print a JSON array of container summaries')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const summaries = await withSession(globalOptions(command), ctx.io, async ({ store }) => {
        const out: ContainerSummary[] = [];
        for (const record of await store.listContainers()) {
          const snapshot = await store.loadSnapshot(record.name);
          if (snapshot) out.push(toSummary(summarizeContainer(showUnfinishedCommands(snapshot))));
        }
        return out;
      });
      if (opts.json) return printJson(ctx.io, summaries);
      if (summaries.length === 0) return println(ctx.io, `No containers (collection prefix "${globalOptions(command).prefix}").`);
      for (const line of renderList(summaries)) println(ctx.io, line);
    });
}
