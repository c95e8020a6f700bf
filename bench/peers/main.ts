/**
 * `npm run bench:peers [-- --only engine,bullmq,pg-boss,graphile-worker] [-- --floor-seconds 5] [-- --budget 120]`:
 * the engine beside BullMQ (Redis), pg-boss and graphile-worker (PostgreSQL)
 * on the same shapes in one run, each against its own store's floor.
 *
 * Peers need their packages (`npm --prefix bench/peers install`, kept out of
 * the project's own dependencies) and their servers' binaries (Debian:
 * `apt-get install redis-server postgresql`); a peer whose packages or
 * server are missing is skipped with the reason. The bench starts its own
 * throwaway servers (Redis without persistence, a PostgreSQL cluster from
 * `initdb`, the test FerretDB or MONGODB_URI) and stops them at the end,
 * also on error or Ctrl-C.
 *
 * Shapes, every worker a separate process: 1,000 × 50 ms at concurrency 16
 * on one worker; 128 × 500 ms at concurrency 8 on one and on two workers.
 * Wall time is from the `go` to the end of the last handler. Floors: single
 * writes/s at concurrency 16, measured before the first shape, between
 * shapes and after the last; a shape's figures are normalised by the mean of
 * the floors measured just before and just after it (on a shared machine the
 * floor itself moves). Writes bench/peers/results.json. Not part of `npm test`.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startMongoServer } from '../../tools/mongo-server.js';
import type { Ctx } from '../engine/harness.js';
import { runProcesses } from '../engine/runners.js';
import { mongoFloor, postgresFloor, redisFloor } from './floor.js';
import { loadPeer, PEER_IDS, type PeerId } from './peers.js';
import type { Peer } from './peer.js';
import { runPeer, type Shape, type ShapeRun } from './run-peer.js';
import { startPostgres, startRedis } from './servers.js';
import { rowsOf, table, type Measured, type Store } from './report.js';

const SYSTEMS = ['engine', ...PEER_IDS] as const;
type SystemId = (typeof SYSTEMS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'floor-seconds': { type: 'string', default: '5' },
    budget: { type: 'string', default: '120' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`npm run bench:peers -- [--only ${SYSTEMS.join(',')}] [--floor-seconds 5] [--budget <s per run>]`);
  process.exit(0);
}
const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : null;
for (const s of only ?? []) if (!(SYSTEMS as readonly string[]).includes(s)) throw new Error(`--only: unknown system "${s}"; systems: ${SYSTEMS.join(', ')}`);
const floorSeconds = Number(values['floor-seconds']);
const budgetS = Number(values.budget);
const FLOOR_CONCURRENCY = 16;
const SHAPES: Shape[] = [
  { tasks: 1000, taskMs: 50, concurrency: 16, workers: 1 },
  { tasks: 128, taskMs: 500, concurrency: 8, workers: 1 },
  { tasks: 128, taskMs: 500, concurrency: 8, workers: 2 },
];

const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const loadAtStart = load();
console.log(`load average (1, 5, 15 min) at start: ${loadAtStart}; node ${process.version}`);

const servers: Array<{ stop(): Promise<void> }> = [];
const track = (stop: () => Promise<void>) => void servers.push({ stop });
let stopping: Promise<void> | null = null;
const stopAll = () =>
  (stopping ??= (async () => {
    for (const s of servers.reverse()) await s.stop().catch((e: Error) => console.error(`stopping a server: ${e.message}`));
  })());
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopAll().finally(() => process.exit(130)));

const peers = new Map<PeerId, Peer>();
const urls: Partial<Record<Store, string>> = {};
const versions: Record<string, string> = {};
const measured: Measured[] = [];
const floors: Record<Store, number[]> = { ferretdb: [], redis: [], postgres: [] };

try {
  for (const id of PEER_IDS) {
    if (only && !only.has(id)) continue;
    const peer = await loadPeer(id);
    if (peer) peers.set(id, peer);
  }
  const mongo = await startMongoServer({});
  servers.push(mongo);
  urls.ferretdb = mongo.uri;
  versions.ferretdb = mongo.kind;
  if (peers.has('bullmq')) {
    const redis = await startRedis(track);
    if (redis) {
      urls.redis = redis.url;
      versions.redis = redis.version;
    } else peers.delete('bullmq');
  }
  if (peers.has('pg-boss') || peers.has('graphile-worker')) {
    const postgres = await startPostgres(track);
    if (postgres) {
      urls.postgres = postgres.url;
      versions.postgres = postgres.version;
    } else for (const id of ['pg-boss', 'graphile-worker'] as const) peers.delete(id);
  }
  for (const peer of peers.values()) versions[peer.name.split(' ')[0]!] = peer.name;

  const measureFloors = async (when: string) => {
    const floorOf = { ferretdb: mongoFloor, redis: redisFloor, postgres: postgresFloor };
    for (const store of Object.keys(floorOf) as Store[]) {
      const url = urls[store];
      if (!url) continue;
      const perSecond = await floorOf[store](url, FLOOR_CONCURRENCY, floorSeconds);
      floors[store].push(perSecond);
      console.log(`floor ${when}: ${store} ${Math.round(perSecond)} writes/s at concurrency ${FLOOR_CONCURRENCY} (load ${load()})`);
    }
  };
  await measureFloors('before the first shape');

  // runProcesses reads only the server's URI from its context; the engine bench's other options do not apply here.
  const ctx = { serverUri: mongo.uri, serverKind: mongo.kind, opts: { budgetS, concurrency: 16, pollMs: null } } as Ctx;
  const systems: SystemId[] = SYSTEMS.filter((s) => (s === 'engine' ? !only || only.has(s) : peers.has(s)));
  // Shape by shape, every system in turn, so that a change of load hits them all alike.
  for (const [round, shape] of SHAPES.entries()) {
    if (round > 0) await measureFloors(`before shape ${round + 1}`);
    for (const system of systems) {
      const loadBefore = loadavg()[0]!;
      let run: ShapeRun;
      let store: Store;
      if (system === 'engine') {
        const r = await runProcesses(ctx, shape.workers, { tasks: shape.tasks, taskMs: shape.taskMs, concurrency: shape.concurrency, pollMs: null, budgetS });
        run = { seconds: r.seconds, finished: r.finished, startedPerWorker: r.startedPerRunner };
        store = 'ferretdb';
      } else {
        const peer = peers.get(system)!;
        store = peer.store;
        run = await runPeer(system, peer, urls[store]!, shape, budgetS);
      }
      const m: Measured = { system, store, shape, round, ...run, load: `${loadBefore.toFixed(1)}→${loadavg()[0]!.toFixed(1)}` };
      measured.push(m);
      console.log(`${system} ${shape.tasks}×${shape.taskMs} ms c${shape.concurrency} ×${shape.workers}: ${run.seconds.toFixed(2)} s${run.finished ? '' : ' (did not finish)'}, per worker ${run.startedPerWorker.join('/')}, load ${m.load}`);
    }
  }
  await measureFloors('after the last shape');
} finally {
  await stopAll();
}

const rows = rowsOf(measured, floors);
const loadAtEnd = load();
console.log(`\n${table(rows, floors)}\n\nload average (1, 5, 15 min): start ${loadAtStart}, end ${loadAtEnd}`);
const out = fileURLToPath(new URL('./results.json', import.meta.url));
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, versions, loadAtStart, loadAtEnd, floors, rows }, null, 2)}\n`);
console.log(`written to ${out}`);
process.exit(0);
