/**
 * Runs the real `pts` CLI (src/cli/main.ts through tsx) as a subprocess, for
 * test/cli.*.test.ts. Not a test file itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, spawnTsChild } from './support/child.js';

/** What a finished `pts` run printed and how it exited. */
export interface PtsResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `pts <args>` with `MONGODB_URI=uri` (unless `env` overrides it) and waits for it to exit. */
export async function runPts(
  uri: string | undefined,
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 30_000,
): Promise<PtsResult> {
  const child = spawnTsChild('src/cli/main.ts', args, { MONGODB_URI: uri, PTS_DEBUG: undefined, PTS_FORCE_TTY: undefined, ...env }, {
    label: `pts ${args[0] ?? ''}`,
    echoStderr: false,
  });
  const { code, signal } = await child.waitForExit(timeoutMs);
  return { code, signal, stdout: child.lines.join('\n'), stderr: child.stderr };
}

/** True when util-linux `script` is available to give a child a pseudo-terminal. */
export function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A `pts` process whose stdout is a (pseudo-)terminal. */
export interface TerminalPts {
  /** True when `script` provided a real pseudo-terminal; false when `PTS_FORCE_TTY=1` was used instead. */
  pty: boolean;
  /** Raw output so far (ANSI codes included). */
  output(): string;
  /** Resolves once the output so far matches `pattern`; rejects on exit or timeout. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves when the process has exited (SIGKILLs it and rejects after `timeoutMs`). */
  exited: Promise<PtsResult>;
}

/**
 * Starts `pts <args>` with stdout on a pseudo-terminal (`script -qfec`), or,
 * when `script` is missing, with `PTS_FORCE_TTY=1`.
 */
export function startPtsInTerminal(uri: string, args: string[], timeoutMs = 60_000): TerminalPts {
  const pty = hasScript();
  const node = [process.execPath, '--import', TSX_LOADER, 'src/cli/main.ts', ...args];
  const [cmd, cmdArgs] = pty
    ? ['script', ['-qfec', node.map(shellQuote).join(' '), '/dev/null']]
    : [node[0]!, node.slice(1)];
  const child = spawn(cmd, cmdArgs as string[], {
    cwd: REPO_ROOT,
    env: { ...process.env, MONGODB_URI: uri, PTS_FORCE_TTY: pty ? undefined : '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let closed = false;
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    for (const l of [...listeners]) l();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<PtsResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pts ${args.join(' ')} did not exit within ${timeoutMs} ms; output so far:\n${stdout.slice(-2000)}\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      closed = true;
      for (const l of [...listeners]) l();
      resolve({ code, signal, stdout, stderr });
    });
  });
  const waitForOutput = (pattern: RegExp, waitMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stdout)) done(), resolve();
        else if (closed) done(), reject(new Error(`pts exited before printing ${pattern}:\n${stdout.slice(-2000)}\n${stderr}`));
      };
      const timer = setTimeout(() => (done(), reject(new Error(`no output matching ${pattern} within ${waitMs} ms`))), waitMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  return { pty, output: () => stdout, waitForOutput, exited };
}
