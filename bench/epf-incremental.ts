/**
 * `npx tsx bench/epf-incremental.ts [--rows 2000000] [--incremental 100000]`:
 * an EPF incremental over a big live table, through the job's own importer
 * (`importTable` then `publishStaging`, as the import step runs them), with
 * the write strategy the job chooses on the server at hand
 * (`EPF_INCREMENTAL_WRITE=auto`: `generation` on FerretDB v1, `upsert` where
 * an index serves `{ _id, export_date }`).
 *
 * The table is shaped like `application_detail` (EPF.md: primary key
 * `application_id` + `language_code`; long free text): about 750 bytes per
 * row, so 2M rows are about 1.5 GB flat. The incremental changes half of its
 * rows (existing keys, newer `export_date`) and adds the other half.
 *
 * Prints the full import (the floor an incremental is compared with), the
 * incremental, rows/s, and the peak RSS of this process and of the server
 * when the bench started it (sampled from /proc every 250 ms). Checks the
 * result: the live table holds rows + incremental/2 rows afterwards, and a
 * sample of changed rows carries the new values; else it fails.
 * Uses MONGODB_URI when set, else the test server (tools/mongo-server.ts).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { importTable } from '../src/ingest/epf/load/import-table.js';
import { liveCollectionName, publishStaging } from '../src/ingest/epf/load/switch.js';
import { startMongoServer } from '../tools/mongo-server.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '2000000' }, incremental: { type: 'string', default: '100000' } } });
const ROWS = Number(values.rows);
const INC = Number(values.incremental);
const FULL_DATE = 1745712000000;
const INC_DATE = FULL_DATE + 86_400_000;
const LANGS = ['EN', 'DE', 'FR', 'JA'];
const filler = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor '.repeat(8);

/** Row i of the table: key (application_id, language_code), about 750 bytes. */
function fields(i: number, exportDate: number, version: number): string[] {
  const app = 280_000_000 + Math.floor(i / LANGS.length);
  return [
    String(exportDate),
    String(app),
    LANGS[i % LANGS.length]!,
    `App ${i} v${version}`,
    `${filler.slice(0, 380 + (i % 200))} ${i}`,
    `release ${version}`,
    `https://example.com/${app}`,
    `https://example.com/${app}/support`,
    `https://example.com/${app}/shot1.jpg`,
    '320x480',
  ];
}

async function writeFile(file: string, mode: 'FULL' | 'INCREMENTAL', rows: Iterable<string[]>, count: number): Promise<void> {
  const out = createWriteStream(file);
  const rec = (f: string[]) => f.join('\x01') + '\x02\n';
  const put = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  await put(rec(['#export_date', 'application_id', 'language_code', 'title', 'description', 'release_notes', 'company_url', 'support_url', 'screenshot_url_1', 'screenshot_width_height_1']));
  await put(rec(['#primaryKey:application_id', 'language_code']));
  await put(rec(['#dbTypes:BIGINT', 'INTEGER', 'VARCHAR(20)', 'VARCHAR(1000)', 'LONGTEXT', 'LONGTEXT', 'VARCHAR(1000)', 'VARCHAR(1000)', 'VARCHAR(1000)', 'VARCHAR(20)']));
  await put(rec([`#exportMode:${mode}`]));
  for (const f of rows) await put(rec(f));
  await put(rec([`#recordsWritten:${count}`]));
  out.end();
  await once(out, 'finish');
}

function* fullRows(): Generator<string[]> {
  for (let i = 0; i < ROWS; i++) yield fields(i, FULL_DATE, 1);
}
/** Half of the incremental changes existing rows (spread over the table), half adds new ones. */
function* incRows(): Generator<string[]> {
  const step = Math.max(1, Math.floor(ROWS / (INC / 2)));
  for (let k = 0; k < INC / 2; k++) yield fields(k * step, INC_DATE, 2);
  for (let k = 0; k < INC / 2; k++) yield fields(ROWS + k, INC_DATE, 2);
}

const rssKb = async (pid: number): Promise<number> => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1] ?? 0);

const server = await startMongoServer({});
const serverPid = (server as { serverPid?: number }).serverPid;
const connection = await mongoose.createConnection(server.uri, { dbName: `pts_bench_epf_inc_${process.pid}` }).asPromise();
const db = connection.db!;
const dir = await mkdtemp(path.join(os.tmpdir(), 'epf-inc-bench-'));
const peaks = { job: 0, server: 0 };
const sampler = setInterval(() => {
  void rssKb(process.pid).then((kb) => (peaks.job = Math.max(peaks.job, kb)));
  if (serverPid) void rssKb(serverPid).then((kb) => (peaks.server = Math.max(peaks.server, kb)));
}, 250);
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
try {
  const full = path.join(dir, 'application_detail.full');
  const inc = path.join(dir, 'application_detail.inc');
  await writeFile(full, 'FULL', fullRows(), ROWS);
  await writeFile(inc, 'INCREMENTAL', incRows(), INC);
  console.log(`server: ${server.kind}; live table ${ROWS} rows, incremental ${INC} rows (${INC / 2} changed, ${INC / 2} new)`);
  const common = { db, table: 'application_detail', source: 'bench/application_detail.tbz', batchSize: 2000 };

  let t0 = performance.now();
  await importTable({ ...common, file: full, mode: 'full', exportDate: '20250427' });
  await publishStaging(db, 'application_detail', '20250427');
  const fullS = (performance.now() - t0) / 1000;
  console.log(`full import:        ${fullS.toFixed(0)} s, ${Math.round(ROWS / fullS)} rows/s; peak RSS so far: job ${mb(peaks.job)}, server ${serverPid ? mb(peaks.server) : 'not measured'}`);
  peaks.job = 0;
  peaks.server = 0;

  t0 = performance.now();
  const result = await importTable({ ...common, file: inc, mode: 'incremental', exportDate: '20250428' });
  await publishStaging(db, 'application_detail', '20250428');
  const incS = (performance.now() - t0) / 1000;
  const write = result.write ?? 'auto';
  console.log(`incremental (${write}): ${incS.toFixed(0)} s, ${Math.round(INC / incS)} incremental rows/s; ${(incS / fullS).toFixed(2)}x the full import`);
  console.log(`peak RSS during the incremental: job ${mb(peaks.job)}, server ${serverPid ? mb(peaks.server) : 'not measured (server not started by the bench)'}`);

  // The result, checked: every row of the full, plus the new half; changed rows carry the new version.
  const live = (await liveCollectionName(db, 'application_detail'))!;
  const count = await db.collection(live).estimatedDocumentCount();
  const sample = await db.collection(live).find({ title: { $regex: / v2$/ } }).limit(5).toArray();
  if (count !== ROWS + INC / 2 || sample.length === 0) throw new Error(`WRONG RESULT: ${count} rows (want ${ROWS + INC / 2}), ${sample.length} changed rows found`);
  console.log(`checked: ${count} rows live, changed rows carry the incremental's values`);
} finally {
  clearInterval(sampler);
  await rm(dir, { recursive: true, force: true });
  await connection.dropDatabase().catch(() => {});
  await connection.close();
  await server.stop();
}
