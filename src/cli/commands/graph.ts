import type { Command } from 'commander';
import { getContainerStatus } from '../../status/inspect.js';
import { globalOptions, type CliContext } from '../context.js';
import { renderMermaid } from '../render/mermaid.js';
import { withSession } from '../session.js';

/** Registers `pts graph`. */
export function registerGraph(program: Command, ctx: CliContext): void {
  program
    .command('graph')
    .description('print the task graph as Mermaid (flowchart TD), nodes labelled and coloured by status')
    .argument('<container>', 'container name')
    .action(async (container: string, _opts: unknown, command: Command) => {
      const report = await withSession(globalOptions(command), ctx.io, ({ source }) => getContainerStatus(container, source));
      ctx.io.stdout.write(renderMermaid(report));
    });
}
