/**
 * One worker process of a peer (forked by run-peer.ts): connects, says
 * `ready`, starts working on `go` (each job sleeps `taskMs` and sends its
 * wall-clock span, ms since the epoch), and stops and exits on `stop`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadPeer, type PeerId } from './peers.js';

export interface WorkerJob {
  peer: PeerId;
  url: string;
  queue: string;
  taskMs: number;
  concurrency: number;
}

const job = JSON.parse(process.env.BENCH_PEER_JOB!) as WorkerJob;
const peer = await loadPeer(job.peer);
if (!peer) process.exit(3);
const worker = await peer.prepare(job.url, job.queue, job.concurrency);
process.on('message', (m) => {
  if (m === 'go') {
    void worker.start(async () => {
      const start = Date.now();
      await sleep(job.taskMs);
      process.send!({ span: [start, Date.now()] });
    });
  } else if (m === 'stop') {
    void worker.stop().finally(() => process.exit(0));
  }
});
// The bench process is gone (Ctrl-C, crash): nothing left to report to.
process.once('disconnect', () => process.exit(0));
process.send!('ready');
