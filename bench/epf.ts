/**
 * `npm run bench:epf [-- --scale 1500]`: the EPF job on a large fixture full
 * export, against the floor of each stage measured in the same run on the
 * same machine:
 *
 *   download  a plain HTTP GET of every archive from the fixture server to nowhere
 *   bzip2     `bzip2 -d` of every archive to nowhere
 *   insert    insertMany of the same documents (batches of 2000, two tables at a
 *             time) with the driver alone; only the time with an insert in flight
 *   pipeline  `pts epf` (src/cli/main.ts) in its own process: download, verify, extract,
 *             import into staging, check, publish (peak RSS of the job, and of the
 *             embedded server when the bench started it, sampled from /proc)
 *
 * The fixture holds the real feed's quirks at its rates (tables.ts, QUIRK_RATES):
 * rows with `\x01` inside text (repaired, or rejected when ambiguous), every
 * date form, bracketed integers. The job's summary must give every table the
 * generator's row count, else the bench fails instead of timing a wrong result.
 *
 * The pipeline runs its stages concurrently over files, so it is bounded by
 * its slowest stage; the goal is at least 0.7 of that stage's floor with flat
 * memory. Prints a table and writes bench/results-epf.json. Uses MONGODB_URI
 * when set, else the same server the tests use. Scale 1500 is about 250 MB
 * compressed and 4 million rows (generated once, about 4 minutes, then cached
 * in $TMPDIR/pts-epf-bench).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { startFixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { startMongoServer } from '../tools/mongo-server.js';

const { values } = parseArgs({ options: { scale: { type: 'string', default: '1500' } } });
const scale = Number(values.scale);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

const server = await startMongoServer({});
const feed = await startFixtureFeed({
  dir: path.join(os.tmpdir(), 'pts-epf-bench'),
  layout: 'v5',
  scale,
  faults: { lateMd5: { match: '/incremental/' } }, // the full export alone
});
const archives = feed.manifest.files.filter((f) => f.kind === 'full');
const compressed = archives.reduce((s, f) => s + f.size, 0);
const rows = feed.truth.tables.reduce((s, t) => s + feed.truth.count(t.table, feed.truth.dates.full), 0);
const auth = `Basic ${Buffer.from(`${feed.username}:${feed.password}`).toString('base64')}`;
console.error(`fixture: scale ${scale}, ${archives.length} archives, ${(compressed / 1e6).toFixed(1)} MB compressed, ${rows} rows`);

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

// 1. download floor: the same files, plain GETs, two at a time (as the job).
const downloadS = await timed(async () => {
  const queue = [...archives];
  await Promise.all(
    [0, 1].map(async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const res = await fetch(feed.origin + f.path, { headers: { authorization: auth } });
        for await (const _ of res.body!) void _;
      }
    }),
  );
});

// 2. bzip2 floor: decompress every archive to nowhere, one at a time (as the job's cpu group).
let uncompressed = 0;
const bzip2S = await timed(async () => {
  for (const f of archives) {
    const diskPath = path.join(feed.root, f.path);
    await new Promise<void>((resolve, reject) => {
      const p = spawn('bzip2', ['-dc', diskPath], { stdio: ['ignore', 'pipe', 'inherit'] });
      p.stdout.on('data', (b: Buffer) => (uncompressed += b.length));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bzip2 exited ${code} on ${diskPath}`))));
    });
  }
});

// 3. insert floor: the same documents, insertMany with the driver alone, two
// tables at a time (as the job's database group). Only the insertMany calls
// are timed: making the documents (the fixture regenerates them) is not.
const dbName = `pts_bench_epf_${process.pid}`;
const conn = await mongoose.createConnection(server.uri, { dbName }).asPromise();
let insertS = 0;
{
  const tables = [...feed.truth.tables];
  const worker = async () => {
    for (let t = tables.shift(); t; t = tables.shift()) {
      const coll = conn.db!.collection(`floor_${t.table}`);
      let batch: Record<string, unknown>[] = [];
      const flush = async () => {
        const started = performance.now();
        await coll.insertMany(batch, { ordered: false });
        insertIntervals.push([started, performance.now()]);
        batch = [];
      };
      for (const d of feed.truth.documents(t.table, feed.truth.dates.full)) {
        batch.push(d as Record<string, unknown>);
        if (batch.length === 2000) await flush();
      }
      if (batch.length) await flush();
    }
  };
  const insertIntervals: Array<[number, number]> = [];
  await Promise.all([worker(), worker()]);
  // Wall time during which at least one insertMany was in flight.
  insertIntervals.sort((a, b) => a[0] - b[0]);
  let end = -Infinity;
  for (const [from, to] of insertIntervals) {
    insertS += Math.max(0, to - Math.max(from, end));
    end = Math.max(end, to);
  }
  insertS /= 1000;
}
await conn.dropDatabase();

// 4. the pipeline, in its own process, with peak RSS sampled from /proc.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-bench-work-'));
const uri = `${server.uri.replace(/\/$/, '')}/${dbName}`;
let peakRssKb = 0;
let serverPeakRssKb = 0;
const serverPid = (server as { serverPid?: number }).serverPid;
const rssKb = (pid: number): number => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0; // exited, or no /proc
  }
};
let summaryLine = '';
const pipelineS = await timed(
  () =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX, 'src/cli/main.ts', 'epf', '--json'], {
        env: { ...process.env, MONGODB_URI: uri, EPF_BASE_URL: feed.baseUrl, EPF_USERNAME: feed.username, EPF_PASSWORD: feed.password, EPF_WORK_DIR: work },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const sample = setInterval(() => {
        peakRssKb = Math.max(peakRssKb, rssKb(child.pid!));
        if (serverPid) serverPeakRssKb = Math.max(serverPeakRssKb, rssKb(serverPid));
      }, 200);
      child.on('close', (code) => {
        clearInterval(sample);
        summaryLine = out.trim().split('\n').at(-1) ?? '';
        if (code === 0) resolve();
        else reject(new Error(`the job exited ${code}: ${summaryLine}`));
      });
    }),
);
const check = await mongoose.createConnection(server.uri, { dbName }).asPromise();
await check.dropDatabase();
await check.close();
await conn.close();
fs.rmSync(work, { recursive: true, force: true });

// The job's own account: every table as the generator says, and how many rows it repaired or rejected.
const summary = JSON.parse(summaryLine) as { durationMs: number; tables: Record<string, { rows: number; repaired: number; rejected: number; size?: number }> };
const wrong = feed.truth.tables
  .map((t) => ({ table: t.table, want: feed.truth.count(t.table, feed.truth.dates.full), got: summary.tables[t.table]?.size }))
  .filter((t) => t.got !== t.want);
if (wrong.length) {
  console.error(`WRONG RESULT, not timed: ${wrong.map((w) => `${w.table} has ${w.got} rows, the generator made ${w.want}`).join('; ')}`);
  process.exit(1);
}
const repaired = Object.values(summary.tables).reduce((n, t) => n + t.repaired, 0);
const rejected = Object.values(summary.tables).reduce((n, t) => n + t.rejected, 0);

const mb = compressed / 1e6;
const stages = [
  { stage: 'download (HTTP GET, 2 at a time)', seconds: downloadS, mbPerS: mb / downloadS, rowsPerS: rows / downloadS },
  { stage: 'bzip2 -d to /dev/null', seconds: bzip2S, mbPerS: mb / bzip2S, rowsPerS: rows / bzip2S },
  { stage: 'insertMany, driver alone (2 at a time, insert time only)', seconds: insertS, mbPerS: mb / insertS, rowsPerS: rows / insertS },
];
const slowest = stages.reduce((a, b) => (b.seconds > a.seconds ? b : a));
// From the job's own clock (its summary's durationMs: after the process loaded its modules, which
// `node --import tsx` compiles on each start: seconds on a busy machine, none for the built package).
const jobS = summary.durationMs / 1000;
const pipeline = { stage: 'the EPF job (whole pipeline, from its start)', seconds: jobS, mbPerS: mb / jobS, rowsPerS: rows / jobS };
const processRow = { stage: 'the same, whole process (with tsx start-up)', seconds: pipelineS, mbPerS: mb / pipelineS, rowsPerS: rows / pipelineS };
console.log(`\nEPF full export: ${mb.toFixed(1)} MB compressed, ${(uncompressed / 1e6).toFixed(0)} MB flat, ${rows} rows (${repaired} repaired, ${rejected} rejected), server ${server.kind}\n`);
console.log('| stage | s | MB/s (compressed) | rows/s | pipeline / stage |');
console.log('| --- | --- | --- | --- | --- |');
for (const s of [...stages, pipeline, processRow]) {
  console.log(`| ${s.stage} | ${s.seconds.toFixed(1)} | ${s.mbPerS.toFixed(2)} | ${Math.round(s.rowsPerS)} | ${(pipeline.rowsPerS / s.rowsPerS).toFixed(2)} |`);
}
const ratio = pipeline.rowsPerS / slowest.rowsPerS;
const processRatio = processRow.rowsPerS / slowest.rowsPerS;
const serverRss = serverPid ? `, of the server ${(serverPeakRssKb / 1024).toFixed(0)} MB` : ' (server not started by the bench: its RSS is not measured)';
console.log(`\nslowest stage: ${slowest.stage}; the job at ${ratio.toFixed(2)} of its floor (goal >= 0.7: ${ratio >= 0.7 ? 'met' : 'NOT MET'}), ${processRatio.toFixed(2)} with the process start-up`);
console.log(`peak RSS during the job: of the job ${(peakRssKb / 1024).toFixed(0)} MB${serverRss}`);
fs.writeFileSync(
  'bench/results-epf.json',
  `${JSON.stringify({ scale, compressedBytes: compressed, flatBytes: uncompressed, rows, server: server.kind, stages, pipeline, process: processRow, slowest: slowest.stage, ratio, processRatio, repaired, rejected, peakRssMb: peakRssKb / 1024, serverPeakRssMb: serverPid ? serverPeakRssKb / 1024 : null }, null, 2)}\n`,
);
await feed.stop();
await server.stop();
process.exit(0);
