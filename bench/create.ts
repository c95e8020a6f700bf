/**
 * How long creating tasks takes: `store.addTasks` of N tasks into a fresh
 * container, and `Runner.create` of a definition with N tasks (container,
 * snapshot read, tasks). Also the raw floor: one collection `insertMany`.
 *
 *   npx tsx bench/create.ts [sizes=1000,10000] [repeats=3]
 *
 * Uses MONGODB_URI when set, else the embedded test server. Prints the
 * median of `repeats` runs per size, in ms, next to the way tasks were made
 * before (one `Model.create` per task, into another collection) measured in
 * the same runs, so that a busy machine slows both alike.
 */
import mongoose from 'mongoose';
import { defineContainer, DEFAULT_TASK_OPTIONS, MongoStore, Runner, type ContainerBuilder } from '../src/index.js';
import { bindModels } from '../src/store/mongo/models.js';
import { startMongoServer } from '../tools/mongo-server.js';

const SIZES = (process.argv[2] ?? '1000,10000').split(',').map(Number);
const REPEATS = Number(process.argv[3] ?? 3);

const server = await startMongoServer({});
const uri = `${server.uri.replace(/\/$/, '')}/pts_bench_create_${Date.now()}`;
const connection = await mongoose.createConnection(uri).asPromise();
const store = await MongoStore.create(connection);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

let n = 0;
for (const size of SIZES) {
  const tasks = Array.from({ length: size }, (_, i) => ({
    name: `t${i}`, dependsOn: i > 0 ? [`t${i - 1}`] : [], handler: 't', input: { i }, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null,
  }));
  const addTasks: number[] = [];
  const runnerCreate: number[] = [];
  const raw: number[] = [];
  const oneByOne: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const c = `bench-add-${n++}`;
    await store.createContainer({ name: c, failFast: true, definition: null });
    addTasks.push(await time(async () => {
      const added = await store.addTasks(c, tasks);
      if (added.length !== size) throw new Error(`added ${added.length} of ${size}`);
    }));
    let def = defineContainer(`bench-runner-${n++}`) as ContainerBuilder<any>;
    for (let i = 0; i < size; i++) def = def.task(`t${i}`, async () => i);
    runnerCreate.push(await time(() => Runner.create({ store, container: def })));
    const coll = connection.collection(`bench_raw_${n++}`);
    const docs = tasks.map((t, i) => ({ _id: `raw-${i}` as never, ...t, order: i, createdAt: new Date() }));
    raw.push(await time(async () => {
      for (let i = 0; i < docs.length; i += 500) await coll.insertMany(docs.slice(i, i + 500), { ordered: false });
    }));
    const old = bindModels(connection, `old${n++}`).tasks;
    await old.createCollection();
    oneByOne.push(await time(async () => {
      for (const [i, t] of tasks.entries()) await old.create({ _id: `old-${i}`, container: 'c', ...t, order: i, createdAt: new Date() });
    }));
  }
  console.log(`${size} tasks: store.addTasks ${median(addTasks).toFixed(0)} ms; Runner.create ${median(runnerCreate).toFixed(0)} ms; raw insertMany floor ${median(raw).toFixed(0)} ms; one Model.create per task (before) ${median(oneByOne).toFixed(0)} ms (median of ${REPEATS})`);
}
console.log(`server: ${server.kind}`);
await connection.dropDatabase();
await connection.close();
await server.stop();
