#!/usr/bin/env node
/**
 * Entry point of the `pts` command: inspect and control containers stored in
 * MongoDB. Run `pts --help` for the commands; see ./program.ts.
 */
import { runCli } from './run.js';

// `pts list | head`: the reader went away; stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; if a stray handle (a driver timer, say) would keep
// the process alive, do not let it hang the shell.
setTimeout(() => process.exit(code), 2000).unref();
