/**
 * How fast the engine moves trivial tasks, next to the database's own limit.
 *
 *   npx tsx bench/throughput.ts [tasks=200] [runners=1]
 *
 * Uses MONGODB_URI when set, else the embedded test server. Prints the
 * server's serial insert rate (the floor every transition pays), the
 * engine's task rate, and their ratio in inserts per task.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';
import { defineContainer, MongoStore, Runner, type ContainerBuilder } from '../src/index.js';
import { startMongoServer } from '../tools/mongo-server.js';

const TASKS = Number(process.argv[2] ?? 200);
const RUNNERS = Number(process.argv[3] ?? 1);

function container(): ContainerBuilder<any> {
  let c = defineContainer('bench') as ContainerBuilder<any>;
  for (let i = 0; i < TASKS; i++) c = c.task(`t${i}`, async () => i);
  return c;
}

async function runOne(uri: string): Promise<void> {
  const connection = await mongoose.createConnection(uri).asPromise();
  const runner = await Runner.create({ connection, container: container(), concurrency: 8, pollMs: 200 });
  await runner.run();
  await connection.close();
}

if (process.env.BENCH_CHILD_URI) {
  await runOne(process.env.BENCH_CHILD_URI);
  process.exit(0);
}

const server = await startMongoServer({});
const uri = `${server.uri.replace(/\/$/, '')}/pts_bench_${Date.now()}`;
const connection = await mongoose.createConnection(uri).asPromise();

// The database's own limit: serial single-document inserts with unique _ids.
const probe = connection.collection('probe');
const N = 500;
let t0 = performance.now();
for (let i = 0; i < N; i++) await probe.insertOne({ _id: `k${i}` as never, v: i });
const insertsPerSec = N / ((performance.now() - t0) / 1000);

const setup = await Runner.create({ connection, container: container() }); // creates container and tasks
void setup;
t0 = performance.now();
const self = fileURLToPath(import.meta.url);
await Promise.all(
  Array.from(
    { length: RUNNERS },
    () =>
      new Promise<void>((resolve, reject) => {
        const child = fork(self, [String(TASKS)], { env: { ...process.env, BENCH_CHILD_URI: uri }, execArgv: ['--import', 'tsx'] });
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`runner exited ${code}`))));
      }),
  ),
);
// Measured from the first claim to the last outcome, as recorded in the
// database, so process start-up is not counted.
const snapshot = (await (await MongoStore.create(connection)).loadSnapshot('bench'))!;
const first = Math.min(...snapshot.tasks.map((t) => t.state.firstStartedAt!.getTime()));
const last = Math.max(...snapshot.tasks.map((t) => t.state.endedAt!.getTime()));
const seconds = (last - first) / 1000;
const byRunner = new Map<string, number>();
for (const t of snapshot.tasks) byRunner.set(t.state.runnerId!, (byRunner.get(t.state.runnerId!) ?? 0) + 1);
console.log(`wall time including process start-up: ${((performance.now() - t0) / 1000).toFixed(2)} s; tasks per runner: ${[...byRunner.values()].join(', ')}`);
const tasksPerSec = TASKS / seconds;
console.log(`server: ${server.kind}`);
console.log(`serial inserts: ${insertsPerSec.toFixed(0)}/s`);
console.log(`engine: ${TASKS} no-op tasks, ${RUNNERS} runner process(es), concurrency 8 each: ${seconds.toFixed(2)} s = ${tasksPerSec.toFixed(1)} tasks/s`);
console.log(`ratio: one task costs the time of ${(insertsPerSec / tasksPerSec).toFixed(1)} serial inserts`);
await connection.dropDatabase();
await connection.close();
await server.stop();
