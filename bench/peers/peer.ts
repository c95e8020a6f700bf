/**
 * What the peers bench needs of a job queue: enqueue `n` jobs (in the
 * parent, before the clock starts), and, in each worker process, connect,
 * then start working at a concurrency with a given handler, then stop.
 */
export interface Peer {
  /** Library name and version, for the report. */
  name: string;
  /** Which store's floor normalises its figures. */
  store: 'redis' | 'postgres';
  /** Creates the queue `queue` and adds `n` jobs to it, each one call of the handler. */
  enqueue(url: string, queue: string, n: number): Promise<void>;
  /** Connects a worker with `concurrency` slots; nothing runs before `start`. */
  prepare(url: string, queue: string, concurrency: number): Promise<PreparedWorker>;
}

export interface PreparedWorker {
  start(handler: () => Promise<void>): Promise<void>;
  /** Stops taking jobs and closes the worker's connections. */
  stop(): Promise<void>;
}

/** The version field of an installed package's package.json (resolved from bench/peers). */
export async function versionOf(pkg: string): Promise<string> {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  return (require(`${pkg}/package.json`) as { version: string }).version;
}
