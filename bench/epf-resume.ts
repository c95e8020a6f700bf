/**
 * What a full import's resume costs before its first new batch (issue 14, B:
 * "a resume after kill -9 at 800k rows waited 836 s before its first new
 * batch": the replayed rows were read back by a `$in` of compound `_id`s,
 * which FerretDB v1 answers by reading the whole collection).
 *
 *   npx tsx bench/epf-resume.ts [rows=200000] [lagBatches=2] [inFlight=0]
 *
 * Imports a full table of `rows` rows (compound key, as `application_detail`)
 * into staging, stopped at 90% with its last `lagBatches` checkpoints lost
 * (a checkpoint is written at most once a second, so a SIGKILL replays the
 * batches committed since), then resumes it. With `inFlight=1` the stop fell
 * while the last batch's insert ran (its marker is removed, load/replay.ts),
 * which still costs one count of the table. Prints the time of the first
 * import, the time from the resume to its first new batch, the resume's
 * total, and the server's peak RSS during the resume when this bench started it. The
 * table must end with every row once. Uses MONGODB_URI when set, else
 * starts the test server (tools/mongo-server.ts).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { importTable, type ImportCheckpoint } from '../src/ingest/epf/load/import-table.js';
import { stagingCollectionName } from '../src/ingest/epf/load/switch.js';
import { startMongoServer } from '../tools/mongo-server.js';

const ROWS = Number(process.argv[2] ?? 200_000);
const LAG = Number(process.argv[3] ?? 2);
const IN_FLIGHT = process.argv[4] === '1';
const BATCH = 2000;
const LANGS = ['EN', 'FR', 'DE', 'JA'];

async function writeTable(file: string, rows: number): Promise<void> {
  const out = createWriteStream(file);
  const rec = (fields: Array<string | number>) => fields.join('\x01') + '\x02\n';
  const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  await write(rec(['#export_date', 'application_id', 'language_code', 'title', 'description']));
  await write(rec(['#primaryKey:application_id', 'language_code']));
  await write(rec(['#dbTypes:BIGINT', 'INTEGER', 'VARCHAR(20)', 'VARCHAR(1000)', 'LONGTEXT']));
  await write(rec(['#exportMode:FULL']));
  for (let i = 0; i < rows; i++) {
    const app = 280_000_000 + Math.floor(i / LANGS.length);
    await write(rec([1745712000000, app, LANGS[i % LANGS.length]!, `App ${app}`, `A description of app ${app}, `.repeat(4)]));
  }
  await write(rec([`#recordsWritten:${rows}`]));
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

/** RSS of a process, bytes (0 when unknown). */
async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const server = process.env.MONGODB_URI ? undefined : await startMongoServer({});
const uri = process.env.MONGODB_URI ?? server!.uri;
const connection = await mongoose.createConnection(uri, { dbName: `pts_bench_resume_${process.pid}`, monitorCommands: true }).asPromise();
let counts = 0;
connection.getClient().on('commandStarted', (e) => void (e.commandName === 'count' || (e.commandName === 'aggregate' && JSON.stringify(e.command.pipeline).includes('$group')) ? counts++ : 0));
const db = connection.db!;
const dir = await mkdtemp(path.join(os.tmpdir(), 'pts-epf-resume-'));
try {
  const file = path.join(dir, 'application_detail');
  await writeTable(file, ROWS);
  const base = { db, file, table: 'application_detail', source: 'itunes20250427/application_detail.tbz', mode: 'full' as const, exportDate: '20250427', batchSize: BATCH };
  const stopAt = Math.floor((ROWS * 0.9) / BATCH);
  const saved: ImportCheckpoint[] = [];
  let t0 = performance.now();
  const stopped = await importTable({
    ...base,
    onBatch: async (cp) => {
      saved.push(cp);
      if (saved.length === stopAt) throw new Error('stop');
    },
  }).catch((e: unknown) => e);
  if ((stopped as Error).message !== 'stop') throw stopped;
  const firstS = (performance.now() - t0) / 1000;
  const resume = saved[stopAt - 1 - LAG]!;
  if (IN_FLIGHT) await db.collection('epf_import_batches').deleteOne({ _id: `${resume.importId}#${saved[stopAt - 2]!.number}` as never });
  counts = 0;
  const serverPid = (server as { serverPid?: number } | undefined)?.serverPid;
  let serverPeak = 0;
  const sampler = setInterval(() => void (serverPid ? rss(serverPid).then((b) => (serverPeak = Math.max(serverPeak, b))) : undefined), 200);

  t0 = performance.now();
  let firstNewS: number | undefined;
  const result = await importTable({
    ...base,
    resume,
    onBatch: async (cp) => {
      if (firstNewS === undefined && cp.number > saved[stopAt - 1]!.number) firstNewS = (performance.now() - t0) / 1000;
    },
  });
  const resumeS = (performance.now() - t0) / 1000;
  const resumeCounts = counts;
  clearInterval(sampler);
  const stored = await db.collection(stagingCollectionName('application_detail', '20250427')).estimatedDocumentCount();
  if (result.rows !== ROWS || result.rejected !== 0 || stored !== ROWS) {
    throw new Error(`wrong result: rows ${result.rows}, rejected ${result.rejected}, stored ${stored}, expected ${ROWS}`);
  }
  console.log(`rows ${ROWS}, batch ${BATCH}, stopped after ${stopAt} batches, ${LAG} checkpoint(s) lost (${LAG * BATCH} rows replayed)${IN_FLIGHT ? ', the last one in flight' : ''}`);
  console.log(`resume: counts of the table ${resumeCounts}`);
  console.log(`first import to the stop   ${firstS.toFixed(1)} s (${Math.round((stopAt * BATCH) / firstS)} rows/s)`);
  console.log(`resume: first new batch    ${firstNewS?.toFixed(2)} s`);
  console.log(`resume: total              ${resumeS.toFixed(2)} s (${ROWS - resume.number} rows)`);
  console.log(`first new batch / (time of one batch in the first import) = ${((firstNewS ?? 0) / (firstS / stopAt)).toFixed(1)}x`);
  console.log(serverPid ? `server peak RSS during the resume ${(serverPeak / 2 ** 20).toFixed(0)} MiB` : 'server not started by the bench: its RSS is not measured');
} finally {
  await db.dropDatabase().catch(() => undefined);
  await connection.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
}
