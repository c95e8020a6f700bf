import { startMongoServer } from '../../tools/mongo-server.js';
import { runProcesses } from './runners.js';
const [k, tasks, taskMs, conc] = process.argv.slice(2).map(Number);
const server = await startMongoServer({});
const ctx = { serverUri: server.uri, serverKind: server.kind, opts: { pollMs: null } } as never;
const run = await runProcesses(ctx, k!, { tasks: tasks!, taskMs: taskMs!, concurrency: conc!, pollMs: null, budgetS: 120 });
console.log(JSON.stringify(run));
await server.stop();
