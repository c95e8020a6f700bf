/**
 * The main example: an hourly/nightly import in the spirit of the EPF jobs
 * this package was born for. Check a feed, download three exports in
 * parallel (two at a time), verify each, then import everything.
 *
 *   npm run example            run (or resume) the job
 *   npm run example -- --fresh forget the previous run and start over
 *
 * Interrupt it half-way (Ctrl-C, or even `kill -9`) and run it again: finished
 * tasks are not repeated and downloads continue from their saved offset.
 * Uses MONGODB_URI when set; otherwise starts the embedded server
 * (persistent-task-status/embedded) whose data stays in ./.pts-data, so the
 * second run finds the first one's state, and `npm run db` can show it later.
 */
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { defineContainer, getContainerStatus, MongoStore, Runner, type TaskContext } from '../src/index.js';
import { startEmbeddedMongo } from '../src/embedded/index.js';

const { values: args } = parseArgs({ options: { fresh: { type: 'boolean', default: false } } });
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => (clearTimeout(t), reject(signal!.reason));
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

const EXPORTS = [
  { name: 'itunes', sizeMb: 60 },
  { name: 'music', sizeMb: 90 },
  { name: 'video', sizeMb: 45 },
] as const;
type ExportName = (typeof EXPORTS)[number]['name'];

/** Simulates a resumable download: 1 MB per tick, checkpointing the offset. */
function download(name: ExportName) {
  return async (ctx: TaskContext) => {
    const size = EXPORTS.find((e) => e.name === name)!.sizeMb;
    let offset = (ctx.lastCheckpoint as { offsetMb: number } | undefined)?.offsetMb ?? 0;
    if (offset > 0) console.log(`  ↻ ${ctx.task}: resuming at ${offset}/${size} MB (attempt ${ctx.attempt})`);
    while (offset < size) {
      await sleep(80, ctx.signal);
      offset += 1;
      await ctx.checkpoint({ offsetMb: offset });
      await ctx.progress(offset / size, `${offset}/${size} MB`);
    }
    return { file: `${name}.tbz`, sizeMb: size };
  };
}

const container = defineContainer('nightly-import-demo')
  .task('check-feed', async (ctx) => {
    await ctx.progress(0.5, 'listing the feed');
    await sleep(500, ctx.signal);
    return { exports: EXPORTS.map((e) => e.name), listedAt: new Date() };
  })
  .task('download-itunes', { dependsOn: ['check-feed'], group: 'network' }, download('itunes'))
  .task('download-music', { dependsOn: ['check-feed'], group: 'network' }, download('music'))
  .task('download-video', { dependsOn: ['check-feed'], group: 'network' }, download('video'))
  .task('verify-all', { dependsOn: ['download-itunes', 'download-music', 'download-video'] }, async (ctx) => {
    await sleep(400, ctx.signal);
    return Object.values(ctx.deps).reduce((mb, d) => mb + d.sizeMb, 0);
  })
  .task('import', { dependsOn: ['verify-all', 'check-feed'] }, async (ctx) => {
    for (let i = 1; i <= 10; i++) {
      await sleep(100, ctx.signal);
      await ctx.progress(i / 10, `${i * 10}% of rows`);
    }
    return `imported ${ctx.deps['verify-all']} MB from ${ctx.deps['check-feed'].exports.length} exports`;
  });

const server = await startEmbeddedMongo({ dataDir: '.pts-data', log: (l) => console.log(l) });
// Your MONGODB_URI is used as given; the embedded server gets its own database.
const embedded = server.kind !== 'external';
const connection = await mongoose.createConnection(server.uri, embedded ? { dbName: 'pts_example' } : {}).asPromise();
const watchUri = new URL(server.uri);
if (embedded) watchUri.pathname = '/pts_example';
console.log(`Watch it from another terminal:\n  MONGODB_URI=${watchUri.href} npm run pts -- status ${container.name} --watch`);
try {
  if (args.fresh) {
    await (await MongoStore.create(connection)).deleteContainer(container.name);
    console.log('Previous run deleted; starting over.');
  }
  const stopOnSignal = new AbortController();
  process.once('SIGINT', () => {
    console.log('\nStopping: running tasks get 2 s, then their leases are released. Run again to resume.');
    stopOnSignal.abort();
  });
  const runner = await Runner.create({
    connection,
    container,
    concurrency: 3,
    groups: { network: 2 },
    leaseMs: 5_000,
    stopTimeoutMs: 2_000,
    signal: stopOnSignal.signal,
  });
  runner
    .on('container:started', (e) => console.log(e.resumed ? `Resuming "${e.container}"` : `Starting "${e.container}"`))
    .on('task:started', (e) => console.log(`  ▶ ${e.task}${e.recovered ? ' (recovered from a lost runner)' : ''}`))
    .on('task:succeeded', (e) => console.log(`  ✔ ${e.task} in ${e.durationMs} ms`))
    .on('task:retry', (e) => console.log(`  ↺ ${e.task} failed (${e.error.message}); retry in ${e.delayMs} ms`))
    .on('task:failed', (e) => console.log(`  ✘ ${e.task}: ${e.error.message}`));

  // The percentage is read back from the database, as any other process would.
  const ticker = setInterval(async () => {
    const s = await getContainerStatus(container.name, { connection }).catch(() => null);
    if (!s || s.status !== 'running') return;
    const running = s.tasks.filter((t) => t.status === 'running').map((t) => `${t.name} ${t.statusText || `${t.percentComplete}%`}`);
    console.log(`  [${s.percentComplete.toFixed(1).padStart(5)}%] ${running.join(' | ')}`);
  }, 1_000);
  const result = await runner.run();
  clearInterval(ticker);
  const status = await getContainerStatus(container.name, { connection });
  const imported = status.tasks.find((t) => t.name === 'import');
  console.log(`Container "${result.container}": ${result.status}, ${status.percentComplete}% complete.`);
  if (result.status === 'succeeded' && imported) {
    const snapshot = await (await MongoStore.create(connection)).loadSnapshot(container.name);
    console.log(`Result: ${String(snapshot?.tasks.find((t) => t.record.name === 'import')?.state.output)}`);
    console.log('Run it again to see a finished run; add -- --fresh to start over.');
  }
  if (embedded) console.log('Look at its data after it ended: `npm run db` (in another terminal), then `npm run pts -- list` with the MONGODB_URI it prints.');
  process.exitCode = result.status === 'succeeded' || result.status === 'stopped' ? 0 : 1;
} finally {
  await connection.close();
  await server.stop();
}
