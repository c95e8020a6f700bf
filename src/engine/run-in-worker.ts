import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { TaskContext, TaskHandler } from '../definition/types.js';
import { InvalidOptionError } from '../errors.js';

/** Options of {@link runInWorker}. */
export interface WorkerHandlerOptions {
  /** The module's export to run. @defaultValue 'default' */
  exportName?: string;
  /** Most worker threads this handler runs at once (its own pool). @defaultValue os.availableParallelism() */
  maxThreads?: number;
  /** How long an idle worker thread is kept before it ends, in ms. @defaultValue 10000 */
  idleTimeoutMs?: number;
}

/** The worker side: a plain JavaScript file next to this one (in `src/engine/` and in `dist/`). */
const WORKER_ENTRY = new URL('./worker-entry.js', import.meta.url).href;

/** A message from the worker side to the attempt. */
type WorkerMessage = { kind: 'progress'; fraction: number; statusText?: string } | { kind: 'checkpoint'; state: unknown };

/**
 * A task handler that runs the function exported by `module` in a worker
 * thread (a pool of them, through piscina), so that CPU-bound work does not
 * block the runner's event loop: heartbeats go on, the lease holds, and
 * other tasks of the runner keep running.
 *
 * The function receives a context like `TaskContext`, of plain values
 * (`container`, `task`, `attempt`, `runnerId`, `input`, `deps`,
 * `lastCheckpoint`), plus `progress()` and `checkpoint()` (sent to the main
 * thread, which writes them as usual; they resolve at once) and a `signal`.
 * `ctx.addTasks` is not available there. Inputs and the return value cross
 * threads by structured clone (plain objects, arrays, Dates, typed arrays).
 *
 * When the attempt is aborted (timeout, cancel, stop, lost lease), its
 * thread is ended at once, even in the middle of synchronous work: a fenced
 * off attempt cannot go on writing to the outside world.
 *
 * `module`: a `file:` URL (`new URL('./hash.js', import.meta.url)`) or a
 * path (relative to the working directory) of an ES module or CommonJS file
 * that Node can load as is (JavaScript, not TypeScript).
 *
 * @throws InvalidOptionError for a bad `module` or option (when called, not when the task runs).
 */
export function runInWorker<Output = unknown>(module: string | URL, options: WorkerHandlerOptions = {}): TaskHandler<any, Output> {
  const href = moduleHref(module);
  const exportName = options.exportName ?? 'default';
  if (typeof exportName !== 'string' || exportName === '') throw new InvalidOptionError('exportName', 'must be a non-empty string');
  const maxThreads = options.maxThreads ?? os.availableParallelism();
  if (!Number.isInteger(maxThreads) || maxThreads < 1) throw new InvalidOptionError('maxThreads', `must be a positive integer, got ${String(maxThreads)}`);
  const idleTimeout = options.idleTimeoutMs ?? 10_000;
  if (!Number.isInteger(idleTimeout) || idleTimeout < 0) throw new InvalidOptionError('idleTimeoutMs', `must be a non-negative integer, got ${String(idleTimeout)}`);

  // Started at the first task, shared by every task this handler runs.
  let pool: Piscina | null = null;
  return async (ctx: TaskContext<any, any>): Promise<Output> => {
    pool ??= new Piscina({ filename: WORKER_ENTRY, minThreads: 0, maxThreads, idleTimeout });
    const signal = ctx.signal;
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (m: WorkerMessage) => {
      // Errors reach the attempt as usual: runner:error, or its signal aborts.
      if (m.kind === 'progress') void ctx.progress(m.fraction, m.statusText);
      else if (m.kind === 'checkpoint') void ctx.checkpoint(m.state as never);
    });
    const context = {
      container: ctx.container,
      task: ctx.task,
      attempt: ctx.attempt,
      runnerId: ctx.runnerId,
      input: ctx.input,
      deps: { ...ctx.deps },
      lastCheckpoint: ctx.lastCheckpoint,
    };
    try {
      return (await pool.run({ module: href, exportName, context, port: port2 }, { transferList: [port2], signal })) as Output;
    } catch (error) {
      // The thread was ended because the attempt was aborted: its reason is the cause.
      if (signal.aborted) throw signal.reason;
      throw error;
    } finally {
      port1.close();
    }
  };
}

function moduleHref(module: string | URL): string {
  if (module instanceof URL) {
    if (module.protocol !== 'file:') throw new InvalidOptionError('module', `must be a file: URL or a path, got ${module.href}`);
    return module.href;
  }
  if (typeof module !== 'string' || module === '') throw new InvalidOptionError('module', 'must be a file: URL or a path');
  return module.startsWith('file:') ? module : pathToFileURL(path.resolve(module)).href;
}
