/**
 * What a 0.0.1 call costs as its container grows: builds one container of N
 * tasks through `addTask`, timing each call and counting the database
 * commands it sends (and the documents their replies return).
 *
 *   npx tsx bench/compat-calls.ts [tasks=400]
 *
 * Uses MONGODB_URI when set, else the embedded test server.
 */
import mongoose from 'mongoose';
import { createClient } from '../src/index.js';
import { startMongoServer } from '../tools/mongo-server.js';

const TASKS = Number(process.argv[2] ?? 400);

const server = process.env.MONGODB_URI ? null : await startMongoServer({});
const base = (process.env.MONGODB_URI ?? server!.uri).replace(/\/$/, '');
const connection = await mongoose.createConnection(`${base}/pts_bench_compat_${Date.now()}`, { monitorCommands: true }).asPromise();
let commands = 0;
let docs = 0;
connection.getClient().on('commandStarted', () => (commands += 1));
connection.getClient().on('commandSucceeded', (e) => {
  const cursor = (e.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } } | undefined)?.cursor;
  docs += (cursor?.firstBatch ?? cursor?.nextBatch ?? []).length;
});

interface Sample {
  ms: number;
  commands: number;
  docs: number;
}

async function measure(call: () => Promise<unknown>): Promise<Sample> {
  commands = 0;
  docs = 0;
  const t0 = performance.now();
  await call();
  return { ms: performance.now() - t0, commands, docs };
}

const fmt = (s: Sample) => `${s.ms.toFixed(1).padStart(7)} ms ${String(s.commands).padStart(3)} commands ${String(s.docs).padStart(5)} docs`;

try {
  const client = createClient({ connection });
  const c = await client.getOrCreateTaskContainer('bench');
  const adds: Sample[] = [];
  const t0 = performance.now();
  for (let i = 1; i <= TASKS; i++) adds.push(await measure(() => c.addTask(`t${i}`, { taskData: { i } })));
  const total = performance.now() - t0;
  for (const i of [1, 2, 100, 200, TASKS].filter((n, k, all) => n <= TASKS && all.indexOf(n) === k)) {
    console.log(`addTask #${String(i).padEnd(4)} ${fmt(adds[i - 1]!)}`);
  }
  console.log(`building ${TASKS} tasks: ${(total / 1000).toFixed(1)} s`);
  console.log(`updateTask (task #${TASKS}) ${fmt(await measure(() => c.updateTask(`t${TASKS}`, { percentageComplete: 50 })))}`);
  console.log(`getTask    (task #${TASKS}) ${fmt(await measure(() => c.getTask(`t${TASKS}`)))}`);
  console.log(`getTasks   (${TASKS} tasks) ${fmt(await measure(() => c.getTasks()))}`);
} finally {
  await connection.dropDatabase();
  await connection.close();
  await server?.stop();
}
