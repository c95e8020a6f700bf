/**
 * `npm run bench [-- --quick] [-- --sizes 1000,10000,100000] [-- --only flat,resume]`:
 * the engine against the goals of its performance issue, every figure a
 * ratio measured in the same run on one server:
 *
 *   flat, chain   commands and documents read per task (driver command
 *                 monitoring), creation and run apart, at each size;
 *                 per-task figures at the largest size against 1k
 *   chain400      a 400-task chain against a 400-task flat container
 *   throughput    no-op tasks/s on flat 1k against the same durable writes
 *                 (claim + outcome insert per task) through the driver alone
 *   resume        a container half done when its runner was SIGKILLed (10k
 *                 and 100k tasks; --resume-size): a new process's
 *                 Runner.create until the first task:started, against a
 *                 plain find of its task documents; the longest event-loop
 *                 block and the peak RSS over the process's baseline until
 *                 its full read is taken in
 *   memory        peak RSS of a runner process per 100k tasks
 *   join          start delay of a join task after its last parent (diamonds)
 *   slots         300 ms tasks at concurrency 16 against the ideal wall time
 *   runners       1, 2 and 4 runner processes on one container (128 × 500 ms
 *                 at concurrency 8, 1,000 × 50 ms at 16): speed-up over one;
 *                 --runners-reps n runs 1, 2, 4 in turn n times and reports
 *                 medians (a loaded machine moves single runs by 1.5×)
 *   global-limit  4 runner processes under groups { api: { global: 4 } }: extra
 *                 commands per task, most tasks running at once against the limit
 *   rate-limit    4 runner processes under groups { api: { rate: { max: 10, perMs: 1000 } } }:
 *                 extra commands per task, most starts in one window, allowance used
 *   tracing       no-op tasks/s with the default `tracing` (spans through
 *                 `@opentelemetry/api`, no SDK) against `tracing: false`
 *   history       status read and a new 5-task run beside 300 and 10,000 old
 *                 containers (1,000 with --quick), against an empty database
 *   create        Runner.create of a flat container of 100k and 1M tasks
 *                 (--create-sizes; 10k and 100k with --quick): time, peak RSS
 *                 and heap over the baseline, growth from the smallest size
 *
 * Each case has a wall-time budget (`--budget <s>` overrides; defaults 60 s
 * up to 1k tasks, 120 s up to 10k, 300 s above): an engine too slow to
 * finish is stopped and its partial figures reported. Prints each figure as
 * its case ends, then a table; writes bench/results.json. Uses MONGODB_URI
 * when set, else the test server. Not part of `npm test`.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startMongoServer } from '../tools/mongo-server.js';
import { chainVsFlatRow, countCase, scalingRows, type CountCase } from './engine/count.js';
import { joinCase, slotsCase, throughputCase } from './engine/cases.js';
import { resumeCase } from './engine/resume.js';
import { DEFAULT_POLL_MS, type BenchOptions, type Ctx } from './engine/harness.js';
import { historyCase } from './engine/history.js';
import { memoryCase } from './engine/memory.js';
import { globalLimitCase, rateLimitCase, runnersCase } from './engine/runners.js';
import { tracingCase } from './engine/tracing.js';
import { createCase } from './engine/create.js';
import { Results, table, writeJson } from './engine/report.js';

const CASES = ['flat', 'chain', 'chain400', 'throughput', 'resume', 'memory', 'join', 'slots', 'history', 'runners', 'global-limit', 'rate-limit', 'tracing', 'create'] as const;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    only: { type: 'string' },
    budget: { type: 'string' },
    'poll-ms': { type: 'string' },
    'resume-size': { type: 'string' },
    'memory-size': { type: 'string' },
    'create-sizes': { type: 'string' },
    'runners-reps': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`npm run bench -- [--quick] [--sizes 1000,10000,100000] [--only ${CASES.join(',')}]
  [--budget <s per case>] [--poll-ms <ms>] [--resume-size <n,n>] [--memory-size <n>] [--create-sizes 100000,1000000] [--runners-reps <n>] [--out <file>]`);
  process.exit(0);
}
const num = (v: string | undefined, d: number): number => (v === undefined ? d : Number(v));
const quick = values.quick;
const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : null;
for (const c of only ?? []) if (!(CASES as readonly string[]).includes(c)) throw new Error(`--only: unknown case "${c}"; cases: ${CASES.join(', ')}`);
const opts: BenchOptions = {
  sizes: values.sizes ? values.sizes.split(',').map(Number) : quick ? [1000, 10_000] : [1000, 10_000, 100_000],
  quick,
  only,
  budgetS: values.budget === undefined ? null : Number(values.budget),
  concurrency: 16,
  pollMs: values['poll-ms'] === undefined ? null : Number(values['poll-ms']),
  resumeSizes: values['resume-size'] ? values['resume-size'].split(',').map(Number) : quick ? [2000] : [10_000, 100_000],
  memorySize: num(values['memory-size'], quick ? 10_000 : 100_000),
  createSizes: values['create-sizes'] ? values['create-sizes'].split(',').map(Number) : quick ? [10_000, 100_000] : [100_000, 1_000_000],
  slotTasks: quick ? 200 : 1000,
  runnersReps: num(values['runners-reps'], 1),
  diamonds: 50,
};
const wanted = (c: (typeof CASES)[number]) => !only || only.has(c);

const started = new Date();
const server = await startMongoServer({});
const ctx: Ctx = { serverUri: server.uri, serverKind: server.kind, opts };
const results = new Results();
console.log(`server: ${server.kind}; node ${process.version}; concurrency ${opts.concurrency}; pollMs ${opts.pollMs ?? `${DEFAULT_POLL_MS} (default)`}`);

try {
  const counted: CountCase[] = [];
  for (const shape of ['flat', 'chain'] as const) {
    if (!wanted(shape)) continue;
    for (const n of opts.sizes) counted.push(await countCase(ctx, shape, n, results));
  }
  scalingRows(counted, results);
  if (wanted('chain400')) {
    // Long enough for the chain to finish on an engine that reads the whole container per step.
    const flat = await countCase(ctx, 'flat', 400, results, 180);
    const chain = await countCase(ctx, 'chain', 400, results, 180);
    chainVsFlatRow(chain, flat, results);
  }
  if (wanted('throughput')) await throughputCase(ctx, results);
  if (wanted('resume')) for (const n of opts.resumeSizes) await resumeCase(ctx, n, results);
  if (wanted('join')) await joinCase(ctx, results);
  if (wanted('slots')) await slotsCase(ctx, results);
  if (wanted('memory')) await memoryCase(ctx, results);
  if (wanted('runners')) await runnersCase(ctx, results);
  if (wanted('global-limit')) await globalLimitCase(ctx, results);
  if (wanted('rate-limit')) await rateLimitCase(ctx, results);
  if (wanted('history')) await historyCase(ctx, results);
  if (wanted('tracing')) await tracingCase(ctx, results);
  if (wanted('create')) await createCase(ctx, results);
} finally {
  const out = values.out ?? fileURLToPath(new URL('./results.json', import.meta.url));
  writeJson(
    out,
    {
      date: started.toISOString(),
      finishedAt: new Date().toISOString(),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      server: { kind: server.kind, uri: server.uri.replace(/\/\/[^@/]*@/, '//***@') },
      options: { ...opts, only: only ? [...only] : null, pollMsUsed: opts.pollMs ?? DEFAULT_POLL_MS },
    },
    results,
  );
  console.log(`\n${table(results.rows)}\n\nwritten to ${out}`);
  await server.stop();
}
