/** BullMQ on Redis, library defaults except the worker's `concurrency`. */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { versionOf, type Peer } from './peer.js';

// BullMQ's workers need `maxRetriesPerRequest: null` (blocking commands).
const connect = (url: string) => new Redis(url, { maxRetriesPerRequest: null });

export const bullmq: Peer = {
  name: `bullmq ${await versionOf('bullmq')}`,
  store: 'redis',
  async enqueue(url, queue, n) {
    const connection = connect(url);
    const q = new Queue(queue, { connection });
    await q.addBulk(Array.from({ length: n }, (_, i) => ({ name: 't', data: { i } })));
    await q.close();
    connection.disconnect();
  },
  async prepare(url, queue, concurrency) {
    const connection = connect(url);
    let handler: () => Promise<void> = async () => undefined;
    const worker = new Worker(queue, () => handler(), { connection, concurrency, autorun: false });
    await worker.waitUntilReady();
    return {
      async start(h) {
        handler = h;
        void worker.run();
      },
      async stop() {
        await worker.close();
        connection.disconnect();
      },
    };
  },
};
