/**
 * Runs one shape on one peer: enqueues the jobs, forks `workers` worker
 * processes, says `go` to all at once, and measures from the `go` to the end
 * of the last job's handler (as the engine's runners case does).
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PeerId } from './peers.js';
import type { Peer } from './peer.js';
import type { WorkerJob } from './worker-child.js';

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface Shape {
  tasks: number;
  taskMs: number;
  concurrency: number;
  workers: number;
}

export interface ShapeRun {
  /** From the `go` to the end of the last handler, in s. */
  seconds: number;
  finished: boolean;
  startedPerWorker: number[];
}

export async function runPeer(id: PeerId, peer: Peer, url: string, shape: Shape, budgetS: number): Promise<ShapeRun> {
  const queue = `bench_${shape.tasks}x${shape.taskMs}_${shape.workers}_${Date.now()}`;
  await peer.enqueue(url, queue, shape.tasks);
  const job: WorkerJob = { peer: id, url, queue, taskMs: shape.taskMs, concurrency: shape.concurrency };
  const children = Array.from({ length: shape.workers }, () =>
    fork(fileURLToPath(new URL('./worker-child.ts', import.meta.url)), [], {
      env: { ...process.env, BENCH_PEER_JOB: JSON.stringify(job) },
      execArgv: ['--import', TSX],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const started = children.map(() => 0);
  let lastEnd = 0;
  let done = 0;
  try {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve, reject) => {
            child.once('message', () => resolve());
            child.once('exit', (code) => reject(new Error(`${id} worker exited ${code} before it was ready`)));
          }),
      ),
    );
    let allDone!: () => void;
    let allFailed!: () => void;
    let budgetTimer: NodeJS.Timeout | undefined;
    const finished = new Promise<boolean>((resolve) => {
      allDone = () => resolve(true);
      allFailed = () => resolve(false);
      budgetTimer = setTimeout(() => {
        console.error(`  ${id}: budget of ${budgetS} s exceeded at ${done}/${shape.tasks} tasks`);
        resolve(false);
      }, budgetS * 1000);
    });
    children.forEach((child, w) => {
      child.once('exit', (code) => {
        if (done < shape.tasks) {
          console.error(`  ${id}: a worker exited (${code}) at ${done}/${shape.tasks} tasks`);
          allFailed();
        }
      });
      child.on('message', (m) => {
        const span = (m as { span?: [number, number] }).span;
        if (!span) return;
        started[w]!++;
        lastEnd = Math.max(lastEnd, span[1]);
        if (++done === shape.tasks) allDone();
      });
    });
    const goAt = Date.now();
    for (const child of children) child.send('go');
    const ok = await finished;
    clearTimeout(budgetTimer);
    return { seconds: ((ok ? lastEnd : Date.now()) - goAt) / 1000, finished: ok, startedPerWorker: started };
  } finally {
    await Promise.all(children.map((child) => stopChild(child)));
  }
}

/** Asks a worker to stop, then kills it after 15 s. */
async function stopChild(child: ReturnType<typeof fork>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.send('stop');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
