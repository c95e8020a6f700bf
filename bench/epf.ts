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
 *             import into staging, check, publish (peak RSS sampled from /proc)
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
const pipelineS = await timed(
  () =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX, 'src/cli/main.ts', 'epf', '--json'], {
        env: { ...process.env, MONGODB_URI: uri, EPF_BASE_URL: feed.baseUrl, EPF_USERNAME: feed.username, EPF_PASSWORD: feed.password, EPF_WORK_DIR: work },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let last = '';
      child.stdout.on('data', (b: Buffer) => (last = (last + b.toString()).split('\n').slice(-2).join('\n')));
      const sample = setInterval(() => {
        try {
          const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) peakRssKb = Math.max(peakRssKb, Number(m[1]));
        } catch {
          // exited
        }
      }, 200);
      child.on('close', (code) => {
        clearInterval(sample);
        if (code === 0) resolve();
        else reject(new Error(`the job exited ${code}: ${last}`));
      });
    }),
);
const check = await mongoose.createConnection(server.uri, { dbName }).asPromise();
await check.dropDatabase();
await check.close();
await conn.close();
fs.rmSync(work, { recursive: true, force: true });

const mb = compressed / 1e6;
const stages = [
  { stage: 'download (HTTP GET, 2 at a time)', seconds: downloadS, mbPerS: mb / downloadS, rowsPerS: rows / downloadS },
  { stage: 'bzip2 -d to /dev/null', seconds: bzip2S, mbPerS: mb / bzip2S, rowsPerS: rows / bzip2S },
  { stage: 'insertMany, driver alone (2 at a time, insert time only)', seconds: insertS, mbPerS: mb / insertS, rowsPerS: rows / insertS },
];
const slowest = stages.reduce((a, b) => (b.seconds > a.seconds ? b : a));
const pipeline = { stage: 'the EPF job (whole pipeline)', seconds: pipelineS, mbPerS: mb / pipelineS, rowsPerS: rows / pipelineS };
console.log(`\nEPF full export: ${mb.toFixed(1)} MB compressed, ${(uncompressed / 1e6).toFixed(0)} MB flat, ${rows} rows, server ${server.kind}\n`);
console.log('| stage | s | MB/s (compressed) | rows/s | pipeline / stage |');
console.log('| --- | --- | --- | --- | --- |');
for (const s of [...stages, pipeline]) {
  console.log(`| ${s.stage} | ${s.seconds.toFixed(1)} | ${s.mbPerS.toFixed(2)} | ${Math.round(s.rowsPerS)} | ${(pipeline.rowsPerS / s.rowsPerS).toFixed(2)} |`);
}
const ratio = pipeline.rowsPerS / slowest.rowsPerS;
console.log(`\nslowest stage: ${slowest.stage}; pipeline at ${ratio.toFixed(2)} of its floor (goal >= 0.7); peak RSS of the job ${(peakRssKb / 1024).toFixed(0)} MB`);
fs.writeFileSync(
  'bench/results-epf.json',
  `${JSON.stringify({ scale, compressedBytes: compressed, flatBytes: uncompressed, rows, server: server.kind, stages, pipeline, slowest: slowest.stage, ratio, peakRssMb: peakRssKb / 1024 }, null, 2)}\n`,
);
await feed.stop();
await server.stop();
process.exit(0);
