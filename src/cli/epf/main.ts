/**
 * `npm run epf`: the main job. Checks an EPF feed, downloads, verifies,
 * extracts and imports what is new into MongoDB, and prints a summary.
 *
 *   npm run epf                    run one slot now (or resume an interrupted one) and exit
 *   npm run epf -- --hourly        run the `0 * * * *` schedule until Ctrl-C
 *   npm run epf -- --json          also print the summary as one JSON line (last line of stdout)
 *
 * Reads MONGODB_URI (else the embedded database in ./.pts-data), and
 * EPF_BASE_URL, EPF_USERNAME, EPF_PASSWORD (else a local fixture feed; with
 * only the credentials set, Apple's v5 feed). See README "The main job".
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { Ledger, MongoStore, Runner } from '../../index.js';
import { DEFAULT_DATA_DIR, startEmbeddedMongo } from '../../embedded/index.js';
import { APPLE_EPF_V5_URL, EpfFeed, type EpfLayout } from '../../ingest/epf/feed/client.js';
import { startFixtureFeed } from '../../ingest/epf/fixture/server.js';
import { epfContainer, epfContainerName, EPF_RUNNER_LIMITS } from '../../ingest/epf/job.js';
import type { EpfEnv } from '../../ingest/epf/env.js';
import { ConsoleReporter, printSummary } from './report.js';
import { followRunner, runHourly } from './hourly.js';
import { summarize } from '../../ingest/epf/summary.js';

const { values: args } = parseArgs({
  options: {
    hourly: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    layout: { type: 'string' },
  },
});
const env = process.env;
const out = (l: string) => process.stdout.write(`${l}\n`);
const info = (l: string) => process.stderr.write(`${l}\n`);
const startedAt = Date.now();

// --- the database -----------------------------------------------------------
const server = await startEmbeddedMongo({ dataDir: DEFAULT_DATA_DIR, log: info });
const embedded = server.kind !== 'external';
const connection = await mongoose.createConnection(server.uri, embedded ? { dbName: 'epf' } : {}).asPromise();
info(`database: ${connection.name} (${embedded ? `embedded ${server.kind}, data in ${DEFAULT_DATA_DIR}` : 'MONGODB_URI'})`);

// --- the feed ---------------------------------------------------------------
const layout = (args.layout ?? env.EPF_LAYOUT ?? 'v5') as EpfLayout;
let feedUrl = env.EPF_BASE_URL;
let username = env.EPF_USERNAME;
let password = env.EPF_PASSWORD;
let fixture: Awaited<ReturnType<typeof startFixtureFeed>> | undefined;
if (!feedUrl && username && password) feedUrl = APPLE_EPF_V5_URL;
if (!feedUrl) {
  fixture = await startFixtureFeed({
    dir: path.resolve('.epf-fixture'),
    layout,
    scale: Number(env.EPF_FIXTURE_SCALE ?? 1),
    accessLog: path.resolve('.epf-fixture', 'access.log'),
    faults: env.EPF_FIXTURE_RATE ? { trickle: { bytesPerSecond: Number(env.EPF_FIXTURE_RATE) } } : {},
  });
  ({ baseUrl: feedUrl, username, password } = fixture);
  info(`feed: local fixture at ${feedUrl} (set EPF_BASE_URL, EPF_USERNAME, EPF_PASSWORD for a real one)`);
} else {
  info(`feed: ${feedUrl}`);
}
const auth = username && password ? { username, password } : undefined;

const reporter = new ConsoleReporter(Boolean(process.stdout.isTTY) && !args.json);
const jobEnv: EpfEnv = {
  connection,
  feed: new EpfFeed({ baseUrl: feedUrl, username, password, layout }),
  ledger: await Ledger.create({ connection, name: 'epf' }),
  workDir: path.resolve(env.EPF_WORK_DIR ?? '.epf-work'),
  auth,
  prefix: env.EPF_PREFIX ?? 'epf_',
  batchSize: Number(env.EPF_BATCH_SIZE ?? 2_000),
  incrementalWrite: (['upsert', 'generation', 'delete-insert'] as const).find((w) => w === env.EPF_INCREMENTAL_WRITE) ?? 'auto',
  maxRejectFraction: Number(env.EPF_MAX_REJECT_FRACTION ?? 0.01),
  keepFiles: env.EPF_KEEP_FILES === '1',
  downloadCheckpointBytes: env.EPF_DOWNLOAD_CHECKPOINT_BYTES ? Number(env.EPF_DOWNLOAD_CHECKPOINT_BYTES) : undefined,
  reporter,
};
const runnerTuning = {
  ...EPF_RUNNER_LIMITS,
  ...(env.EPF_CHECKPOINT_INTERVAL_MS ? { checkpointIntervalMs: Number(env.EPF_CHECKPOINT_INTERVAL_MS) } : {}),
};

const shutdown = async () => {
  await connection.close().catch(() => undefined);
  await fixture?.stop().catch(() => undefined);
  await server.stop().catch(() => undefined);
};

let exitCode = 0;
try {
  if (args.hourly) {
    await runHourly({ connection, env: { ...jobEnv, reporter }, runner: runnerTuning, log: out, json: Boolean(args.json) });
  } else {
    // Resume an interrupted run first (kill -9, reboot); else start a slot now.
    const store = await MongoStore.create(connection);
    const unfinished = (await store.listContainers())
      .filter((c) => c.name.startsWith('epf-') && c.status === 'running')
      .sort((a, b) => b.name.localeCompare(a.name))[0];
    const name = unfinished?.name ?? epfContainerName(new Date(), true);
    if (unfinished) out(`resuming ${name}, interrupted earlier`);
    const controller = new AbortController();
    process.once('SIGINT', () => {
      info('stopping (Ctrl-C again to force)…');
      controller.abort();
      process.once('SIGINT', () => process.exit(130));
    });
    const runner = await Runner.create({ connection, container: epfContainer(name, jobEnv), ...runnerTuning, signal: controller.signal });
    followRunner(runner, reporter);
    const result = await runner.run();
    reporter.stop();
    const summary = await summarize(store, name, result.status, reporter.bytesReceived, Date.now() - startedAt);
    printSummary(summary, out);
    if (args.json) out(JSON.stringify(summary));
    exitCode = result.status === 'succeeded' ? 0 : result.status === 'stopped' ? 130 : 1;
  }
} catch (error) {
  reporter.stop();
  info(`epf: ${(error as Error).stack ?? String(error)}`);
  exitCode = 1;
} finally {
  await shutdown();
}
process.exit(exitCode);
