/**
 * Real child processes for crash tests: run a TypeScript script with tsx in a
 * separate Node process, watch its stdout line by line, SIGKILL it at the
 * worst moment, and look at what it left behind.
 *
 *   const c = spawnTsChild('test/fixtures/worker.ts', [db.uriWithDb], { LOG: log.path });
 *   await c.waitForLine((l) => l.startsWith('step-2 started'));
 *   await c.kill();            // SIGKILL; resolves on exit
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach } from 'vitest';

export { appendJsonl, readJsonl, sideEffectLog, makeTempDir, type SideEffectLog } from './side-effects.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// `--import tsx` would resolve 'tsx' relative to the child's cwd; an absolute
// file URL works from any cwd.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export type LinePredicate = string | RegExp | ((line: string) => boolean);

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TsChild {
  child: ChildProcess;
  pid: number;
  /** All complete stdout lines received so far. */
  readonly lines: readonly string[];
  /** Everything received on stderr so far. */
  readonly stderr: string;
  /**
   * Resolves with the first stdout line matching `predicate` (a string matches
   * as a substring) that comes after the line matched by the previous
   * `waitForLine` call (so sequential waits walk forward through the output;
   * lines that already arrived count). Rejects if the child exits first or on
   * timeout.
   */
  waitForLine(predicate: LinePredicate, timeoutMs?: number): Promise<string>;
  /** Resolves when the process has exited (rejects on timeout; the process is left alone). */
  waitForExit(timeoutMs?: number): Promise<ExitInfo>;
  /** Sends `signal` (default SIGKILL) and resolves when the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** The exit info once exited, else undefined. */
  readonly exitInfo: ExitInfo | undefined;
}

export interface SpawnTsChildOptions {
  /** Working directory (default: repo root). */
  cwd?: string;
  /** Label for the stderr prefix (default: script file name). */
  label?: string;
  /** Also echo the child's stdout to the parent's stderr (default: env PTS_TEST_VERBOSE=1). */
  echoStdout?: boolean;
  /** Echo the child's stderr, prefixed, to the parent's stderr (default: true). */
  echoStderr?: boolean;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** SIGKILLs every child spawned by spawnTsChild that is still running (e.g. in afterEach). */
export async function killAllChildren(): Promise<void> {
  await Promise.all(
    [...live].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}

/** Registers an afterEach, in the current scope, that runs killAllChildren(). */
export function killChildrenAfterEach(): void {
  afterEach(() => killAllChildren());
}

function matches(predicate: LinePredicate, line: string): boolean {
  if (typeof predicate === 'string') return line.includes(predicate);
  if (predicate instanceof RegExp) return predicate.test(line);
  return predicate(line);
}

function describePredicate(predicate: LinePredicate): string {
  return typeof predicate === 'function' ? predicate.toString().slice(0, 120) : String(predicate);
}

/**
 * Spawns `node --import tsx <script> ...args` with `env` merged over this
 * process's environment. `scriptPath` is relative to the repo root or absolute.
 */
export function spawnTsChild(
  scriptPath: string,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
  opts: SpawnTsChildOptions = {},
): TsChild {
  const script = path.resolve(REPO_ROOT, scriptPath);
  const label = opts.label ?? path.basename(script);
  const echoStdout = opts.echoStdout ?? process.env.PTS_TEST_VERBOSE === '1';
  const echoStderr = opts.echoStderr ?? true;

  const child = spawn(process.execPath, ['--import', TSX_LOADER, script, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) {
    // spawn of process.execPath practically never fails; surface it anyway
    throw new Error(`could not spawn ${process.execPath} for ${script}`);
  }
  const pid = child.pid;
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }

  const lines: string[] = [];
  let stderr = '';
  let cursor = 0; // index after the last line matched by waitForLine
  let exitInfo: ExitInfo | undefined;
  let closed = false;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };

  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
    });
    // 'close' comes after stdout/stderr are drained, so all lines are in.
    child.once('close', () => {
      if (pendingOut) {
        lines.push(pendingOut);
        pendingOut = '';
      }
      exitInfo ??= { code: child.exitCode, signal: child.signalCode };
      closed = true;
      resolve(exitInfo);
      notify();
    });
  });

  let pendingOut = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pendingOut += chunk;
    const parts = pendingOut.split('\n');
    pendingOut = parts.pop() ?? '';
    for (const line of parts) {
      const l = line.endsWith('\r') ? line.slice(0, -1) : line;
      lines.push(l);
      if (echoStdout) process.stderr.write(`[${label} ${pid} out] ${l}\n`);
    }
    if (parts.length) notify();
  });
  let pendingErr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    if (!echoStderr) return;
    pendingErr += chunk;
    const parts = pendingErr.split('\n');
    pendingErr = parts.pop() ?? '';
    for (const line of parts) process.stderr.write(`[${label} ${pid}] ${line}\n`);
  });

  const stderrTail = () => (stderr.trim() ? `\nstderr (tail):\n${stderr.trim().slice(-2000)}` : '');
  const stdoutTail = () => (lines.length ? `\nstdout (last lines):\n${lines.slice(-10).join('\n')}` : '');

  const waitForLine = (predicate: LinePredicate, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        for (let i = cursor; i < lines.length; i++) {
          if (matches(predicate, lines[i]!)) {
            cursor = i + 1;
            finish();
            resolve(lines[i]!);
            return;
          }
        }
        if (closed && exitInfo) {
          finish();
          reject(
            new Error(
              `${label} (pid ${pid}) exited (${exitInfo.signal ?? `code ${exitInfo.code}`}) before printing a line matching ${describePredicate(predicate)}${stdoutTail()}${stderrTail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `${label} (pid ${pid}): no stdout line matching ${describePredicate(predicate)} within ${timeoutMs} ms${stdoutTail()}${stderrTail()}`,
          ),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const waitForExit = (timeoutMs = 30_000) =>
    new Promise<ExitInfo>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${label} (pid ${pid}) did not exit within ${timeoutMs} ms${stderrTail()}`)),
        timeoutMs,
      );
      exited.then((info) => {
        clearTimeout(timer);
        resolve(info);
      });
    });

  const kill = (signal: NodeJS.Signals = 'SIGKILL') => {
    if (!exitInfo) child.kill(signal);
    return exited;
  };

  return {
    child,
    pid,
    get lines() {
      return lines;
    },
    get stderr() {
      return stderr;
    },
    get exitInfo() {
      return exitInfo;
    },
    waitForLine,
    waitForExit,
    kill,
  };
}
