import mongoose from 'mongoose';
import { defineContainer, Runner, type ContainerBuilder } from '../src/index.js';
import { startMongoServer } from '../tools/mongo-server.js';
const server = await startMongoServer({ log: () => {} });
async function run(kind: 'flat' | 'chain', n: number, work = 0, conc = 16) {
  const conn = await mongoose.createConnection(`${server.uri.replace(/\/$/, '')}/b_${kind}_${n}_${Date.now()}`, { monitorCommands: true }).asPromise();
  const counts: Record<string, number> = {}; let docs = 0; let phase = 'create';
  conn.getClient().on('commandStarted', (e) => { const k = `${phase}:${e.commandName}`; counts[k] = (counts[k] ?? 0) + 1; });
  conn.getClient().on('commandSucceeded', (e) => { const c = (e.reply as any)?.cursor; if (c) docs += (c.firstBatch ?? c.nextBatch ?? []).length; });
  let c = defineContainer(`${kind}${n}`) as ContainerBuilder<any>;
  for (let i = 0; i < n; i++) c = c.task(`t${i}`, kind === 'chain' && i > 0 ? { dependsOn: [`t${i - 1}`] } : {}, async () => { if (work) await new Promise((r) => setTimeout(r, work)); return i; });
  let t0 = performance.now();
  const runner = await Runner.create({ connection: conn, container: c, concurrency: conc });
  const createMs = performance.now() - t0; const createDocs = docs; docs = 0; phase = 'run';
  t0 = performance.now();
  const res = await runner.run();
  const runMs = performance.now() - t0;
  const runCmds = Object.entries(counts).filter(([k]) => k.startsWith('run:')).reduce((a, [, v]) => a + v, 0);
  console.log(kind, n, res.status, `create ${createMs.toFixed(0)}ms`, `run ${runMs.toFixed(0)}ms`, `${(n / (runMs / 1000)).toFixed(0)} tasks/s`, `cmds/task ${(runCmds / n).toFixed(2)}`, `docs/task ${(docs / n).toFixed(2)}`, JSON.stringify(counts));
  await conn.close();
}
const args = process.argv.slice(2);
for (const a of args) { const [k, n, w] = a.split(':'); await run(k as any, Number(n), Number(w ?? 0)); }
await server.stop();
