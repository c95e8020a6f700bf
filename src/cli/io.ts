/** Where a command writes and what it reads from the environment. */
export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** The real process streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** True when stdout is a terminal, or when `PTS_FORCE_TTY=1` says to behave as if it were. */
export function isInteractive(io: CliIo): boolean {
  return io.stdout.isTTY === true || io.env.PTS_FORCE_TTY === '1';
}

/** Terminal width (80 when unknown). */
export function terminalColumns(io: CliIo): number {
  const cols = io.stdout.columns;
  return typeof cols === 'number' && cols > 0 ? cols : 80;
}

/** Writes text followed by a newline to stdout. */
export function println(io: CliIo, text = ''): void {
  io.stdout.write(`${text}\n`);
}
