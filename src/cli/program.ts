import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { registerCancel } from './commands/cancel.js';
import { registerEpf } from './commands/epf.js';
import { registerDashboard } from './commands/dashboard.js';
import { registerGraph } from './commands/graph.js';
import { registerList } from './commands/list.js';
import { registerRetry } from './commands/retry.js';
import { registerSchedules } from './commands/schedules.js';
import { registerStatus } from './commands/status.js';
import type { CliContext } from './context.js';
import { oneLine } from './errors.js';

const HELP_FOOTER = `
Environment:
  MONGODB_URI   connection string, database included (required unless --uri is given)
  PTS_SERVER_TIMEOUT_MS  like --server-timeout (default 5000)
  PTS_DEBUG=1   print stack traces of errors
  PTS_FORCE_TTY=1  draw live bars even when stdout is not a terminal

Exit codes:
  0 ok, 1 error (e.g. server unreachable), 2 bad usage or input, 3 container, task or schedule not found,
  status --watch only: 4 container failed, 5 container cancelled, 130 interrupted`;

/** The package version, read from package.json two levels up from src/cli or dist/cli. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Builds the `pts` program; errors are thrown (never `process.exit`) and written as `pts: <message>`. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('pts')
    .description('Inspect and control persistent-task-status containers stored in MongoDB.')
    .version(packageVersion(), '-V, --version')
    .addOption(new Option('--uri <uri>', 'MongoDB connection string (overrides MONGODB_URI)'))
    .option('--prefix <prefix>', 'collection name prefix', 'pts')
    .addOption(
      new Option('--server-timeout <ms>', 'how long to look for a MongoDB server before giving up').env('PTS_SERVER_TIMEOUT_MS'),
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: (s, write) => write(`pts: ${oneLine(s.replace(/^error: /, ''))}\n`),
    })
    .addHelpText('after', HELP_FOOTER);
  registerList(program, ctx);
  registerStatus(program, ctx);
  registerRetry(program, ctx);
  registerCancel(program, ctx);
  registerGraph(program, ctx);
  registerEpf(program, ctx);
  registerDashboard(program, ctx);
  registerSchedules(program, ctx);
  return program;
}
