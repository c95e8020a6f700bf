import type { Command } from 'commander';
import type { CliIo } from './io.js';
import type { GlobalOptions } from './session.js';

/** State shared by the commands of one run: the streams, and the exit code a command chose. */
export interface CliContext {
  io: CliIo;
  exitCode: number;
}

/** The program-wide options (`--uri`, `--prefix`) as seen from a subcommand. */
export function globalOptions(command: Command): GlobalOptions {
  const o = command.optsWithGlobals<{ uri?: string; prefix?: string; serverTimeout?: string }>();
  return { uri: o.uri, prefix: o.prefix ?? 'pts', serverTimeout: o.serverTimeout };
}

/** Prints a value as JSON (pretty, or one line when `compact`). */
export function printJson(io: CliIo, value: unknown, compact = false): void {
  io.stdout.write(`${compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`);
}
