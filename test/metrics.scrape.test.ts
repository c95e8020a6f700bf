/**
 * Prometheus metrics scraped over HTTP from the dashboard's `/metrics` while a
 * real runner runs, against the real test server: the counters move with the
 * run (attempts started and ended, retries, slots in use, bytes and rows
 * reported through ctx.progress), and labels stay bounded by name family.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMetrics, defineContainer, MongoStore, Runner } from '../src/index.js';
import { nameFamily, LabelSet } from '../src/observe/labels.js';
import { databaseMetrics } from '../src/observe/database-metrics.js';
import { serveDashboard, type DashboardServer } from '../src/observe/dashboard/serve.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const metrics = createMetrics();
let dashboard: DashboardServer;

beforeAll(async () => {
  const store = await MongoStore.create(db().connection);
  const fromDatabase = databaseMetrics(store);
  dashboard = await serveDashboard({ store, metrics: async () => `${await metrics.metrics()}\n${await fromDatabase.metrics()}` });
});
afterAll(() => dashboard?.close());

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(new URL('metrics', dashboard.url));
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^(pts_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

it('moves its counters with a run: started, ended by outcome, retries, slots in use, bytes and rows', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  let flaky = 0;
  const container = defineContainer('metrics-2026-12-06', { failFast: false })
    .task('flaky', { retries: 1, backoff: { initialMs: 10, jitter: 0 } }, async () => {
      if (++flaky === 1) throw new Error('first try fails');
      return 1;
    })
    .task('download', async (ctx) => {
      await ctx.progress(0.5, 'half', { bytes: 1000, rows: 10 });
      await ctx.progress(0.9, 'most', { bytes: 1800, rows: 25 });
      entered();
      await gate;
      return 2;
    })
    .task('after', { dependsOn: ['flaky'] }, async () => 3);
  const runner = await Runner.create({ connection: db().connection, container, pollMs: 50 });
  metrics.observeRunner(runner, { concurrency: 4 });
  const run = runner.run();
  await inside;
  const mid = await scrape();
  const c = 'container="metrics"';
  expect(mid.get(`pts_slots_in_use{${c}}`)).toBeGreaterThanOrEqual(1);
  expect(mid.get(`pts_units_processed_total{${c},unit="bytes"}`)).toBe(1800);
  expect(mid.get(`pts_units_processed_total{${c},unit="rows"}`)).toBe(25);
  expect(mid.get(`pts_attempts_started_total{${c},task="download"}`)).toBe(1);
  expect(mid.get(`pts_containers_running{${c}}`)).toBe(1);
  expect(mid.get(`pts_tasks_runner_lost{${c}}`)).toBe(0);

  release();
  expect((await run).status).toBe('succeeded');
  const end = await scrape();
  expect(end.get(`pts_attempts_started_total{${c},task="flaky"}`)).toBe(2);
  expect(end.get(`pts_attempts_ended_total{${c},task="flaky",outcome="retry"}`)).toBe(1);
  expect(end.get(`pts_attempts_ended_total{${c},task="flaky",outcome="succeeded"}`)).toBe(1);
  expect(end.get(`pts_retries_total{${c},task="flaky"}`)).toBe(1);
  for (const task of ['download', 'after']) {
    expect(end.get(`pts_attempts_started_total{${c},task="${task}"}`)).toBe(1);
    expect(end.get(`pts_attempts_ended_total{${c},task="${task}",outcome="succeeded"}`)).toBe(1);
  }
  expect(end.get(`pts_attempt_duration_seconds_count{${c},task="download",outcome="succeeded"}`)).toBe(1);
  expect(end.get(`pts_queue_wait_seconds_count{${c}}`)).toBe(4);
  expect(end.get(`pts_slots_in_use{${c}}`)).toBe(0);
  expect(end.get('pts_slot_limit{runner_group="default"}')).toBe(4);
  expect(end.get(`pts_containers_running{${c}}`) ?? 0).toBe(0);
});

it('keeps label values bounded: dates and numbers fold into one family, then "other" past the limit', () => {
  expect(nameFamily('epf-2026-12-06T10')).toBe('epf');
  expect(nameFamily('import-file-0042')).toBe('import-file');
  expect(nameFamily('2026-report')).toBe('other');
  const labels = new LabelSet(3);
  expect(['a-1', 'b-2', 'c-3', 'a-4', 'd-5'].map((n) => labels.of(n))).toEqual(['a', 'b', 'c', 'a', 'other']);
});
