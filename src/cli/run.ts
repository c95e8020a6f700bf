import { CommanderError } from 'commander';
import type { CliContext } from './context.js';
import { describeError, ExitCode, exitCodeFor } from './errors.js';
import { processIo, type CliIo } from './io.js';
import { buildProgram } from './program.js';

/** Runs `pts` with `args` (without node and script) and resolves with the exit code; never throws. */
export async function runCli(args: string[], io: CliIo = processIo()): Promise<number> {
  const ctx: CliContext = { io, exitCode: ExitCode.OK };
  const program = buildProgram(ctx);
  try {
    if (args.length === 0) {
      program.outputHelp({ error: true });
      return ExitCode.USAGE;
    }
    await program.parseAsync(args, { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its message (help and --version exit 0).
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    io.stderr.write(`pts: ${describeError(error)}\n`);
    if (io.env.PTS_DEBUG === '1') io.stderr.write(`${debugText(error)}\n`);
    return exitCodeFor(error);
  }
}

function debugText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? String(current)) : String(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}
