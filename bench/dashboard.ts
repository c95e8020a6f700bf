/**
 * `npm run bench:dashboard [-- --containers 100000] [-- --samples 30]`:
 * the web dashboard's reads over HTTP (a `serveDashboard` on 127.0.0.1)
 * beside N containers, against the same reads on an empty database, in one
 * run on one server (issue "dashboard", Proof: Speed; goal p95 ≤ 150 ms).
 *
 * Seeding: a few real containers with tasks made and run through the public
 * API, then N raw container documents (shape of src/store/mongo/models.ts,
 * no tasks) by `insertMany`. Timed, `--samples` times each, in rotation:
 *
 *   list          `GET /api/containers` (first page, 25 rows)
 *   status        `GET /api/containers?status=failed`
 *   deep          `GET /api/containers?after=<cursor>` (the cursor of page
 *                 `--deep-pages`, default 20, found by following `next`)
 *   prefix        `GET /api/containers?q=<name prefix>`
 *   container     `GET /api/containers/<a real container>`
 *
 * Prints p50/p95 in ms per query at N and empty, and their ratio. Uses
 * MONGODB_URI when set, else the test server. Not part of `npm test`.
 */
import { parseArgs } from 'node:util';
import { defineContainer, Runner } from '../src/index.js';
import { serveDashboard } from '../src/observe/dashboard/serve.js';
import { startMongoServer } from '../tools/mongo-server.js';
import { openDb, type Ctx } from './engine/harness.js';
import { median, quantile } from './engine/report.js';

/** Goal of the issue: p95 of every query at most this, in ms. */
export const P95_GOAL_MS = 150;
const STATUSES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
const REAL = ['real-a', 'real-b', 'real-c'];

const { values } = parseArgs({
  options: {
    containers: { type: 'string', default: '100000' },
    samples: { type: 'string', default: '30' },
    'deep-pages': { type: 'string', default: '20' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('npm run bench:dashboard -- [--containers <n>] [--samples <n>] [--deep-pages <n>]');
  process.exit(0);
}
const n = Number(values.containers);
const samples = Number(values.samples);
const deepPages = Number(values['deep-pages']);
if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--containers must be a whole number ≥ 0, got ${values.containers}`);
if (!Number.isSafeInteger(samples) || samples < 1) throw new Error(`--samples must be a whole number ≥ 1, got ${values.samples}`);

type Query = 'list' | 'status' | 'deep' | 'prefix' | 'container';
type Timings = Record<Query, number[]>;
/** Per query, the first failure (status and the dashboard's onError cause), when a request failed. */
const failures = new Map<string, string>();

/** Makes the real containers (a few tasks each, one failing) through the public API. */
async function seedReal(connection: import('mongoose').Connection): Promise<void> {
  for (const name of REAL) {
    const def = defineContainer(name)
      .task('fetch', async (ctx) => void (await ctx.checkpoint({ bytes: 10, totalBytes: 10 })))
      .task('parse', { dependsOn: ['fetch'] }, async () => ({ rows: 3 }))
      .task('load', { dependsOn: ['parse'], retries: 0 }, async () => {
        if (name === 'real-b') throw new Error('load refused');
        return null;
      })
      .build();
    const runner = await Runner.create({ connection, container: def });
    await runner.run();
  }
}

/** Inserts `count` raw container documents, 10,000 per `insertMany`, created one second apart (newest last). */
async function seedRaw(connection: import('mongoose').Connection, count: number): Promise<void> {
  const coll = connection.collection<{ _id: string }>('pts_containers');
  const base = Date.now() - count * 1000 - 3_600_000;
  for (let i = 0; i < count; i += 10_000) {
    const docs = [];
    for (let j = i; j < Math.min(count, i + 10_000); j++) {
      const createdAt = new Date(base + j * 1000);
      const status = STATUSES[j % 4]!;
      docs.push({
        _id: `bench-${String(j).padStart(7, '0')}`,
        status,
        failFast: false,
        definition: null,
        createdAt,
        updatedAt: createdAt,
        finishedAt: status === 'running' ? null : new Date(createdAt.getTime() + 500),
        cancelRequestedAt: null,
        incarnation: `inc-${j}`,
        deletedAt: null,
        revision: 0,
        retry: null,
        directory: true,
      });
    }
    await coll.insertMany(docs, { ordered: false });
  }
}

let lastCause = '';

/** GETs `url`; a non-200 answer is recorded in `failures` under `key` and returns null. */
async function get(url: string, key: string): Promise<unknown> {
  const res = await fetch(url);
  if (res.status !== 200) {
    if (!failures.has(key)) failures.set(key, `${res.status} ${await res.text()} (cause: ${lastCause})`);
    return null;
  }
  return res.json();
}

/** Times the five queries `samples` times each, in rotation, on a dashboard over `connection`. */
async function measure(connection: import('mongoose').Connection): Promise<Timings> {
  const dash = await serveDashboard({ connection, readOnly: true, onError: (e) => void (lastCause = String(e).slice(0, 200)) });
  const label = `${connection.name}`;
  try {
    const api = `${dash.url}api/containers`;
    // The cursor of a page deep in the list (page `--deep-pages` when there are that many), found by following `next`.
    let after: string | null = null;
    for (let page = 0; page < deepPages; page++) {
      const body = (await get(after ? `${api}?after=${after}` : api, `${label} deep`)) as { next: string | null } | null;
      if (!body?.next) break;
      after = body.next;
    }
    const urls: Record<Query, string> = {
      list: api,
      status: `${api}?status=failed`,
      deep: after ? `${api}?after=${after}` : api,
      prefix: `${api}?q=${n > 0 ? 'bench-00500' : 'real-'}`,
      container: `${api}/real-b`,
    };
    const timings: Timings = { list: [], status: [], deep: [], prefix: [], container: [] };
    for (const [q, url] of Object.entries(urls)) await get(url, `${label} ${q}`); // warm up
    for (let i = 0; i < samples; i++) {
      for (const [q, url] of Object.entries(urls) as Array<[Query, string]>) {
        const t0 = performance.now();
        if ((await get(url, `${label} ${q}`)) !== null) timings[q].push(performance.now() - t0);
      }
    }
    return timings;
  } finally {
    await dash.close();
  }
}

const server = await startMongoServer({});
const ctx = { serverUri: server.uri, serverKind: server.kind } as Ctx;
console.log(`server: ${server.kind}; node ${process.version}; ${n} containers; ${samples} samples per query`);
const empty = await openDb(ctx, 'dashboard-empty');
const full = await openDb(ctx, 'dashboard-full');
try {
  await seedReal(empty.connection);
  await seedReal(full.connection);
  const t0 = performance.now();
  await seedRaw(full.connection, n);
  console.log(`seeded ${n} containers in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const base = await measure(empty.connection);
  const big = await measure(full.connection);
  console.log(`\nquery       p50 empty  p95 empty  p50 ${n}  p95 ${n}  ratio p50  ratio p95  goal p95 ≤ ${P95_GOAL_MS} ms`);
  let allMet = true;
  for (const q of Object.keys(base) as Query[]) {
    const [e50, e95, b50, b95] = [median(base[q]), quantile(base[q], 0.95), median(big[q]), quantile(big[q], 0.95)];
    const met = big[q].length === samples && b95 <= P95_GOAL_MS;
    allMet &&= met;
    console.log(
      [q.padEnd(10), ...[e50, e95, b50, b95].map((x) => x.toFixed(1).padStart(9)), (b50 / e50).toFixed(2).padStart(9) + '×', (b95 / e95).toFixed(2).padStart(9) + '×', met ? '  met' : '  NOT met'].join('  '),
    );
  }
  for (const [key, why] of failures) console.log(`failed: ${key}: ${why}`);
  console.log(allMet && failures.size === 0 ? '\ngoal met for every query' : '\ngoal not met for every query');
} finally {
  await empty.close();
  await full.close();
  await server.stop();
}
